"""The gazetteer cache: written once, read back, rebuilt when unreadable, stale versions removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from classify.geo import gazetteer
from classify.geo.gazetteer import Gazetteer, Place


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def tiny() -> Gazetteer:
        calls.append(1)
        g = Gazetteer()
        g.places.append(Place(0, "city", "Quevedo", "EC", "EC.13", -1.03, -79.46, 150_000))
        g.index = {"quevedo": (0,)}
        return g

    monkeypatch.setattr(gazetteer, "build", tiny)
    gazetteer.load.cache_clear()
    yield calls
    gazetteer.load.cache_clear()


def test_built_once_then_read_from_the_cache(builds: list[int], tmp_path: Path) -> None:
    (tmp_path / "geo-gazetteer-0000000000000000.pickle").write_bytes(b"older version")
    first = gazetteer.load(str(tmp_path))
    gazetteer.load.cache_clear()
    second = gazetteer.load(str(tmp_path))
    assert len(builds) == 1
    assert second.index == first.index == {"quevedo": (0,)}
    assert [p.name for p in tmp_path.iterdir()] == [f"geo-gazetteer-{gazetteer._signature()}.pickle"]


def test_an_unreadable_cache_is_rebuilt_not_fatal(builds: list[int], tmp_path: Path) -> None:
    (tmp_path / f"geo-gazetteer-{gazetteer._signature()}.pickle").write_bytes(b"\x80\x05garbage")
    assert gazetteer.load(str(tmp_path)).lookup("quevedo") == (0,)
    assert len(builds) == 1


def test_an_unwritable_cache_dir_still_gives_a_gazetteer(builds: list[int], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert gazetteer.load(str(blocker / "cache")).lookup("quevedo") == (0,)
