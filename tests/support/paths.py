"""Where the suite finds the repository and the read-only ``../shared`` data (import this, not conftest)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
