"""Every real-world document in ../shared/fixtures/feeds, served over HTTP and polled with --once --dry-run.

The documents are read where they are (never copied into the repo) and
served as they are: ``.html`` files as ``text/html``, the gzip file as bytes
without ``Content-Encoding``. Per feed, the entries the poller reads equal
``n_entries_expected`` of MANIFEST.tsv; the broken documents (0 expected) are
reported as failures of their feed, never as a failure of the run.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingest.command import poll_once
from ingest.config import PollerSettings

ROOT = Path(__file__).resolve().parents[2]
FEEDS_DIR = ROOT.parent / "shared" / "fixtures" / "feeds"

pytestmark = pytest.mark.shared_data


def manifest() -> list[dict[str, str]]:
    path = FEEDS_DIR / "MANIFEST.tsv"
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


ROWS = manifest()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def feeds_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not ROWS:
        pytest.skip(f"{FEEDS_DIR} is not present")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(FEEDS_DIR)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    target = tmp_path_factory.mktemp("shared") / "feeds.yaml"
    lines = ["feeds:"] + [f"  - name: {row['file']}\n    url: {base}/{row['file']}" for row in ROWS]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    yield target
    server.shutdown()
    server.server_close()


def test_entries_per_feed_match_the_manifest(feeds_file: Path, tmp_path: Path) -> None:
    settings = PollerSettings(
        feeds=str(feeds_file), state_dir=str(tmp_path / "state"), allow_private_addresses=True
    )
    out = io.StringIO()
    report = poll_once(settings, dry_run=True, out=out)
    assert report is not None
    lines = Counter(json.loads(line)["feed"] for line in out.getvalue().splitlines())
    mismatches = []
    for row in ROWS:
        name, expected = row["file"], int(row["n_entries_expected"])
        outcome = report.outcomes[name]
        if outcome.entries != expected:
            mismatches.append(
                f"{name}: read {outcome.entries} entries, manifest says {expected} ({outcome.outcome})"
            )
        if lines[name] != outcome.entries - outcome.duplicates - outcome.unchanged:
            mismatches.append(f"{name}: printed {lines[name]} of {outcome.entries} entries")
        if expected == 0 and outcome.outcome == "ok" and outcome.entries == 0:
            continue  # a well-formed empty feed
        if expected == 0:
            assert outcome.outcome in {"malformed", "not_a_feed"}, f"{name}: {outcome.outcome}"
    assert not mismatches, "\n".join(mismatches)
    # the gzip fixture is the same document as its plain twin: its articles are printed once, in total
    ru = ("ru_orenru_windows1251.xml", "ru_orenru_windows1251_gzipped.xml")
    if all(name in report.outcomes for name in ru):
        assert sum(lines[name] for name in ru) == 10
    assert not (tmp_path / "state").exists()


def test_quirks_are_handled(feeds_file: Path, tmp_path: Path) -> None:
    settings = PollerSettings(
        feeds=str(feeds_file), state_dir=str(tmp_path / "state"), allow_private_addresses=True
    )
    out = io.StringIO()
    report = poll_once(settings, dry_run=True, out=out)
    assert report is not None
    by_feed: dict[str, list[dict[str, object]]] = {}
    for line in out.getvalue().splitlines():
        article = json.loads(line)
        by_feed.setdefault(str(article["feed"]), []).append(article)
    html = report.outcomes["html_daringfireball_homepage.html"]
    assert html.outcome == "not_a_feed" and "/feeds/main" in html.detail
    assert report.outcomes["en_dailymail_empty_channel.xml"].outcome == "ok"
    assert all(
        str(a["url"]).startswith("https://www.ft.com/content/")
        for a in by_feed["en_ft_uk_relative_links.xml"]
    )
    assert not any("at_medium" in str(a["url"]) for a in by_feed["en_bbc_world.xml"])
    assert all(a["published_at_inferred"] for a in by_feed["en_japantimes_no_item_dates.xml"])
    assert not any(
        a["published_at_inferred"] for a in by_feed["pt_uol_noticias.rss"]
    )  # Portuguese dates read
    assert {a["language"] for a in by_feed["es_lanacion_arcxp.xml"]} == {"es"}  # no <language>: detected
    assert len({a["article_id"] for a in by_feed["en_scriptingnews_dup_guids.rss"]}) == 50
    assert report.outcomes["fr_lefigaro_dup_guid.xml"].duplicates == 1
    every_id = [a["article_id"] for articles in by_feed.values() for a in articles]
    assert len(every_id) == len(set(every_id))
    for articles in by_feed.values():
        for a in articles:
            assert "\x00" not in str(a["title"]) + str(a["text"])


def test_cli_once_dry_run(feeds_file: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "WIREWATCH_STATE_DIR": str(tmp_path / "state"),
        "WIREWATCH_LOG_LEVEL": "WARNING",
        "WIREWATCH_ALLOW_PRIVATE_ADDRESSES": "true",  # served on 127.0.0.1
    }
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", "poll", "--once", "--dry-run", "--feeds", str(feeds_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    library = io.StringIO()
    settings = PollerSettings(
        feeds=str(feeds_file), state_dir=str(tmp_path / "state"), allow_private_addresses=True
    )
    assert poll_once(settings, dry_run=True, out=library) is not None
    # same articles as the library path (which twin feed prints a shared article depends on timing)
    assert sorted(line["article_id"] for line in lines) == sorted(
        json.loads(line)["article_id"] for line in library.getvalue().splitlines()
    )
    assert len(lines) == len({line["article_id"] for line in lines})
    for line in lines:
        assert {"article_id", "feed", "url", "title", "language", "published_at"} <= set(line)
    assert "html_gslounge_homepage.html" in done.stderr  # broken feeds are reported
    assert not (tmp_path / "state").exists()
