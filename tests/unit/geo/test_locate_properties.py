"""The resolver on open-ended input: never fails, always a valid contract location, deterministic."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classify.geo.gazetteer import Gazetteer, load
from classify.geo.locate import locate
from wirewatch.contract import EventLocation

PIECES = st.sampled_from(
    [
        "en",
        "Quevedo",
        ",",
        "Los Ríos",
        "EE.UU.",
        "de",
        "colonia",
        "Santa Cruz",
        "\n",
        "MADRID.-",
        "(EFE)",
        "ecuatorianos",
        "la capital",
        "Niger State",
        "Club",
        "ciudad de",
        "US",
        "—",
        "¿",
        "Ñ",
        "  ",
    ]
)
TEXTS = st.one_of(st.text(max_size=300), st.lists(PIECES, max_size=40).map(" ".join))


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    from classify.backbone import model_cache_root

    return load(str(model_cache_root()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=TEXTS, text=TEXTS, hint=st.sampled_from([None, "EC", "US", "ZZ", "mx"]))
def test_any_text_gives_a_valid_deterministic_location(
    gaz: Gazetteer, title: str, text: str, hint: str | None
) -> None:
    found = locate(gaz, title, text, hint)
    assert found == locate(gaz, title, text, hint)
    loc = EventLocation.model_validate(found.to_json())
    if loc.precision == "none":
        assert loc.country is None and loc.place is None
    else:
        assert loc.country is not None and loc.lat is not None and loc.evidence
    if loc.precision in ("city", "sub-city"):
        assert loc.place
