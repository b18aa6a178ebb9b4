"""Run every benchmark in bench/ one after another (``make bench``), each printing its own numbers.

Each script answers one question and measures wirewatch's path beside the naive
baseline in the same run. They need the local services (``make up``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "bench_sink.py",
    "bench_incidents.py",
    "bench_poller.py",
    "bench_classifier.py",
    "bench_geo.py",
    "bench_pipeline.py",
]


def main() -> int:
    failed = []
    for name in ORDER:
        script = HERE / name
        if not script.exists():
            continue
        print(f"\n=== {name} ===", flush=True)
        # As a module from the repository root, so a script may import tests/ (bench_pipeline does).
        module = f"bench.{script.stem}"
        if subprocess.run([sys.executable, "-m", module], cwd=HERE.parent).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
