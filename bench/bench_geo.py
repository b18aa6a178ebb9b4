"""How much does locating each event cost the classifier? Load time, memory, time per article.

Measures, each in a fresh process: building the gazetteer from the packages (the first start of
a classifier on a new machine), loading it from the cache (every later start), the resident
memory it adds, and the time ``locate`` takes per article over the 2,050 stories of
``classify/corpus`` (full texts, English and Spanish), median and p99. The naive baseline
beside it: looking up every word n-gram of the text in the same index with no context (what
"find the place names" costs before any reading of them).

    .venv/bin/python bench/bench_geo.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20
before = rss()
started = time.perf_counter()
from classify.geo.gazetteer import load
gaz = load({cache!r})
print(json.dumps({{"seconds": time.perf_counter() - started, "rss_mb": rss() - before}}))
"""


def _load_in_child(cache: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), cache=cache)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _stories() -> list[dict[str, str]]:
    rows = []
    for path in sorted((ROOT / "classify" / "corpus").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def main() -> int:
    from classify.geo.gazetteer import load
    from classify.geo.locate import locate
    from classify.geo.names import fold

    with tempfile.TemporaryDirectory() as cache:
        cold = _load_in_child(cache)
        warm = _load_in_child(cache)
        gaz = load(cache)
    stories = _stories()

    def timed(fn) -> list[float]:  # type: ignore[no-untyped-def]
        out = []
        for s in stories:
            started = time.perf_counter()
            fn(s)
            out.append((time.perf_counter() - started) * 1000)
        return out

    def naive(s: dict[str, str]) -> int:
        words = fold(f"{s.get('title', '')} {s['text']}").split()
        return sum(
            1
            for n in range(1, 4)
            for i in range(len(words) - n + 1)
            if gaz.lookup(" ".join(words[i : i + n]))
        )

    resolver = timed(lambda s: locate(gaz, s.get("title") or "", s["text"]))
    baseline = timed(naive)
    print(f"stories: {len(stories)} (classify/corpus)")
    print(f"build from packages (cold): {cold['seconds']:.1f} s, +{cold['rss_mb']:.0f} MB resident")
    print(f"load from cache (warm):     {warm['seconds']:.1f} s, +{warm['rss_mb']:.0f} MB resident")
    print("| path | median ms/article | p99 ms/article |")
    print("|---|---|---|")
    for name, times in (
        ("naive: every n-gram looked up, no reading", baseline),
        ("wirewatch locate", resolver),
    ):
        p99 = statistics.quantiles(times, n=100)[98]
        print(f"| {name} | {statistics.median(times):.2f} | {p99:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
