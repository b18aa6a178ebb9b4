"""GroupConsumer.repair_lost_join decides from the coordinator's state alone."""

from __future__ import annotations

from kafka.coordinator.base import MemberState

from wirewatch.group_consumer import GroupConsumer


class FakeCoordinator:
    group_id = "g"

    def __init__(self, state: MemberState, rejoin: bool) -> None:
        self.state, self.rejoin = state, rejoin

    def need_rejoin(self) -> bool:
        return self.rejoin

    def request_rejoin(self) -> None:
        self.rejoin = True


def consumer_with(coordinator: FakeCoordinator) -> GroupConsumer:
    consumer = GroupConsumer.__new__(GroupConsumer)  # no broker: only the coordinator is read
    consumer._coordinator = coordinator
    return consumer


def test_a_member_left_rebalancing_without_a_pending_rejoin_is_sent_back_to_join() -> None:
    coordinator = FakeCoordinator(MemberState.REBALANCING, rejoin=False)
    assert consumer_with(coordinator).repair_lost_join()
    assert coordinator.need_rejoin()


def test_stable_members_and_joins_in_flight_are_left_alone() -> None:
    for state, rejoin in [
        (MemberState.STABLE, False),
        (MemberState.REBALANCING, True),
        (MemberState.UNJOINED, True),
    ]:
        coordinator = FakeCoordinator(state, rejoin)
        assert not consumer_with(coordinator).repair_lost_join()
        assert coordinator.need_rejoin() is rejoin
