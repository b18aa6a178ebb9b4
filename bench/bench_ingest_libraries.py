"""Would a library do better than ingest's hand-written backoff, URL canonicalisation and HTML-to-text?

Issue 13 item 8 asks for ``stamina``/``tenacity``, ``courlan``/``url-normalize`` and
``selectolax`` where they fit. This script measures each candidate beside the code it would
replace, on the real feed documents in ``../shared/fixtures/feeds`` (skipped when absent):

* **URL ids**: how many entry links would get another article id (a changed id re-publishes
  the article on upgrade, and a merged id loses an article), and microseconds per link.
* **HTML to text**: how many summaries/contents would get another clean text (another
  ``content_hash``: every listed article would be re-published as a revision), and speed.
* **Backoff at the cap**: the spread of 10,000 delays drawn at attempt 1,000 (a long outage):
  a spread of 0 s means every retrier comes back at the same instant.

Candidates that are not installed are reported as such (``pip install selectolax url-normalize
tenacity stamina`` into a scratch target to compare; the project does not depend on them). Run:
``.venv/bin/python bench/bench_ingest_libraries.py``.
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from urllib.parse import urljoin

from ingest.normalize import canonical_url, clean_text, link_base, url_identity
from ingest.parse import ParsedFeed, ParseError, parse_document
from wirewatch.retry import Backoff

RULES = (  # rules of tests/unit/ingest/test_normalize.py::test_canonical_url
    "HTTP://WWW.Example.COM:80/a/./b/../c?b=2&a=1&utm_source=x",
    "https://example.com/a b/%7euser",
    "https://bücher.example/x",
    "https://example.com/x?rss_id=3&ocid=2&id=7",
)
FEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "feeds"


def optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        print(f"  {name}: not installed, not compared")
        return None


def documents() -> list[ParsedFeed]:
    parsed = []
    for path in sorted(FEEDS.iterdir()):
        if path.suffix == ".tsv":
            continue
        try:
            document = parse_document(path.read_bytes(), url="https://example.org/feed", content_type=None)
            parsed.append(document)
        except ParseError:
            continue
    return parsed


def per_item_us(fn: Callable[[], object], items: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best / items * 1e6


def compare_urls(docs: list[ParsedFeed]) -> None:
    links = [(e.link, link_base(d, "https://example.org/feed")) for d in docs for e in d.entries if e.link]
    ours = {(link, base): canonical_url(link, base) for link, base in links}
    print(f"URL ids: {len(links)} entry links")
    speed = per_item_us(lambda: [canonical_url(*x) for x in links], len(links))
    print(f"  wirewatch canonical_url: {speed:.1f} us/link")
    courlan, url_normalize = optional("courlan"), optional("url_normalize")
    candidates: dict[str, Callable[[str], str]] = {}
    if courlan is not None:
        candidates["courlan normalize_url strict=False"] = lambda u: courlan.normalize_url(u, strict=False)
        candidates["courlan normalize_url strict=True"] = lambda u: courlan.normalize_url(u, strict=True)
    if url_normalize is not None:
        candidates["url-normalize filter_params=True"] = lambda u: url_normalize.url_normalize(
            u, filter_params=True
        )
    for name, normalise in candidates.items():
        changed = 0
        merged_into: dict[str, set[str]] = {}
        for (link, base), canonical in ours.items():
            if canonical is None:
                continue
            theirs = url_identity(normalise(urljoin(base, link.strip())))
            changed += int(theirs != url_identity(canonical))
            merged_into.setdefault(theirs, set()).add(url_identity(canonical))
        merged = sum(len(ids) - 1 for ids in merged_into.values())

        def run_all(normalise: Callable[[str], str] = normalise) -> list[str]:
            return [normalise(urljoin(base, link)) for link, base in links]

        speed = per_item_us(run_all, len(links))
        print(f"  {name}: {changed} ids changed, {merged} distinct articles merged, {speed:.1f} us/link")
        for raw in RULES:
            if url_identity(normalise(raw)) != url_identity(canonical_url(raw) or ""):
                print(f"    {raw!r}: wirewatch {canonical_url(raw)!r}, {name.split()[0]} {normalise(raw)!r}")


def compare_text(docs: list[ParsedFeed]) -> None:
    fields = [h for d in docs for e in d.entries for h in (e.summary_html, e.content_html) if h]
    print(f"HTML to text: {len(fields)} summary/content fields")
    speed = per_item_us(lambda: [clean_text(f) for f in fields], len(fields))
    print(f"  wirewatch clean_text (html.parser): {speed:.1f} us/field")
    lexbor = optional("selectolax.lexbor")
    if lexbor is None:
        return
    from ingest.normalize import _BLOCK_TAGS, _SKIP_TAGS, _collapse, strip_controls

    def selectolax_text(markup: str) -> str:
        tree = lexbor.LexborHTMLParser(markup)
        for node in tree.css(",".join(_SKIP_TAGS)):
            node.decompose()
        for node in tree.css(",".join(_BLOCK_TAGS)):
            node.insert_before("\n")
            node.insert_after("\n")
        root = tree.body or tree.root
        return _collapse(strip_controls(root.text(deep=True) if root else "", keep_newlines=True))

    changed = sum(selectolax_text(f) != clean_text(f) for f in fields)
    speed = per_item_us(lambda: [selectolax_text(f) for f in fields], len(fields))
    print(f"  selectolax (lexbor), same block/skip rules: {changed} texts changed, {speed:.1f} us/field")
    for markup in ("<textarea>a<b>b</b></textarea>", "<iframe>a<b>b</b></iframe>", "<frameset>lost"):
        print(f"    {markup!r}: wirewatch {clean_text(markup)!r}, selectolax {selectolax_text(markup)!r}")


def compare_backoff() -> None:
    draws, attempt = 10_000, 1_000
    print(f"Backoff at the cap (base 0.5 s, cap 15 s): {draws} delays drawn at attempt {attempt}")

    def spread(delays: list[float]) -> str:
        return f"min {min(delays):.2f} s, max {max(delays):.2f} s, stdev {statistics.pstdev(delays):.2f} s"

    ours = []
    for _ in range(draws):
        backoff = Backoff(base=0.5, cap=15.0)
        backoff.attempts = attempt
        ours.append(backoff.next_delay())
    print(f"  wirewatch Backoff: {spread(ours)}")
    tenacity, stamina = optional("tenacity"), optional("stamina")
    if tenacity is not None:
        state = type("State", (), {"attempt_number": attempt})()
        for name, wait in (
            ("tenacity wait_exponential_jitter", tenacity.wait_exponential_jitter(multiplier=0.5, max=15.0)),
            ("tenacity wait_random_exponential", tenacity.wait_random_exponential(multiplier=0.5, max=15.0)),
        ):
            print(f"  {name}: {spread([wait(state) for _ in range(draws)])}")
    if stamina is not None:
        from stamina._core import _compute_backoff

        print(
            "  stamina (defaults: jitter 1 s): "
            f"{spread([_compute_backoff(attempt, 15.0, 0.5, 2, 1.0) for _ in range(draws)])}"
        )


def main() -> None:
    compare_backoff()
    if not FEEDS.is_dir():
        print(f"{FEEDS} is absent: URL and text comparisons skipped")
        return
    docs = documents()
    print(f"{len(docs)} feed documents from {FEEDS}")
    compare_urls(docs)
    compare_text(docs)


if __name__ == "__main__":
    main()
