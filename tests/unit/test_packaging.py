"""What the distribution installs at the top level, and that nothing else installs the same names.

SPEC fixes ``ingest/``, ``classify/`` and ``store/`` at the repository root, so they install as
top-level packages beside ``wirewatch`` and ``commands``. Mapping them under ``wirewatch.*`` with
setuptools' ``package-dir`` would keep the folders but breaks editable installs of mapped
subpackages (pypa/setuptools#4248) and mypy, which cannot follow the mapping (python/mypy#10564).
The risk that mapping would remove — another distribution shipping a module of the same name —
is checked here instead, against everything the pinned environment installs (README "Packaging").
"""

from __future__ import annotations

import importlib.util
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.support.paths import ROOT

TOP_LEVEL = {"wirewatch", "ingest", "classify", "store", "commands"}


def test_the_distribution_installs_exactly_its_five_top_level_packages() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.rstrip("*") for pattern in include} == TOP_LEVEL


def test_no_other_installed_distribution_ships_one_of_our_top_level_names() -> None:
    owners = packages_distributions()
    for name in sorted(TOP_LEVEL):
        others = set(owners.get(name, [])) - {"wirewatch"}
        assert not others, f"{name!r} is also installed by {sorted(others)}: imports would collide"


def test_each_top_level_name_resolves_to_this_checkout() -> None:
    for name in sorted(TOP_LEVEL):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        assert Path(spec.origin).resolve().is_relative_to(ROOT), (name, spec.origin)
