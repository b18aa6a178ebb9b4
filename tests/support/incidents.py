"""Reports of invented incidents for the linker's tests (our own texts; never copied from ../shared).

``vector(lang, incident, jitter)`` builds an embedding whose language-centred direction is the
incident's own (plus a little per-report noise), so tests control how close two reports are
without loading the encoder; the encoder's real behaviour is covered by the shared-data test.
:func:`synthetic_stream` is a stream of tagged messages shaped like the feeds (the linking bench
and the sink's kill test).
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

import numpy as np

from store.incidents.features import centroids
from tests.support import factories
from wirewatch.contract import Admin1Ref, ArticleTagged, EventLocation

# Wednesday 4 March 2026, 14:00 UTC
T0 = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)

VALVERDE_ES_1 = (
    "Frustran secuestro de empresario en Machala",
    "Agentes de la Policía frustraron este miércoles el secuestro del empresario bananero Rodrigo "
    "Valverde en el barrio Las Brisas de Machala, provincia de El Oro. Tres hombres armados lo "
    "interceptaron cuando salía de su finca; tras un intercambio de disparos, dos sospechosos fueron "
    "detenidos y el tercero huyó en una motocicleta.",
)
VALVERDE_ES_2 = (
    "Dos detenidos tras intento de secuestro a Rodrigo Valverde",
    "El comandante de la Policía en El Oro informó que el intento de secuestro contra Rodrigo Valverde, "
    "ocurrido este miércoles en Las Brisas, al norte de Machala, terminó con dos capturados. Los "
    "uniformados respondieron a una alerta de los vecinos y hubo un cruce de disparos.",
)
VALVERDE_EN = (
    "Police foil kidnapping of Ecuadorian banana grower",
    "Police in Ecuador foiled an attempt to kidnap banana businessman Rodrigo Valverde in the Las "
    "Brisas district of Machala, El Oro province, on Wednesday. Two suspects were arrested after an "
    "exchange of gunfire and a third escaped on a motorcycle.",
)
VALVERDE_FOLLOW_UP = (
    "Procesan a dos acusados por el intento de secuestro de Rodrigo Valverde",
    "Un juez de Machala dictó prisión preventiva contra los dos detenidos por el intento de secuestro "
    "del empresario Rodrigo Valverde en Las Brisas. La Fiscalía de El Oro los acusó de secuestro "
    "en grado de tentativa.",
)
PAREDES_DISTRACTOR = (
    "Secuestran a comerciante en el centro de Machala",
    "Una comerciante identificada como Lucía Paredes fue secuestrada este viernes por hombres "
    "armados en el mercado central de Machala, en El Oro. Sus familiares recibieron una llamada en "
    "la que exigían un rescate; la Policía activó la unidad antisecuestros.",
)


def direction(name: str, size: int = 384) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(size)
    return v / np.linalg.norm(v)


def vector(lang: str, incident: str, jitter: str, noise: float = 0.6, scale: float = 0.35) -> list[float]:
    """A raw embedding (as the classifier sends it) whose centred direction is ``incident``'s."""
    mean = centroids().get(lang, centroids()["*"]).astype(np.float64)
    d = direction(incident) + noise * direction(jitter)
    raw = mean + scale * d / np.linalg.norm(d)
    return [float(x) for x in raw / np.linalg.norm(raw)]


_SYLLABLES = "ba ce di fo gu la me ni po ru sa te vi zo qui dro".split()  # noqa: SIM905


def _words(prefix: str, count: int) -> list[str]:
    """Distinct letter-only proper names (the linker reads names as runs of letters)."""
    return [
        prefix + _SYLLABLES[i % 16] + _SYLLABLES[(i // 16) % 16] + _SYLLABLES[(i // 256) % 16]
        for i in range(count)
    ]


SURNAMES = _words("Al", 400)
TOWNS = _words("Villa", 60)
PROVINCES = _words("Pro", 12)
COUNTRIES = ("EC", "PE", "CO")


def synthetic_stream(n: int, seed: int = 5) -> tuple[list[ArticleTagged], int]:
    """``n`` tagged articles (shuffled) and how many incidents they come from.

    Incidents are reported 1-5 times, in Spanish or English, published within 40 hours of each
    other; each article names its victim, town and province from pools of 400 surnames, 60 towns and
    12 provinces (in three countries), so reports of different incidents share towns and provinces
    the way a week of regional news does; embeddings carry their incident's direction, and the
    message carries the location the classifier would have found.
    """
    rng = random.Random(seed)
    out: list[ArticleTagged] = []
    incident = 0
    while len(out) < n:
        incident += 1
        victim = f"{rng.choice(SURNAMES)} {rng.choice(SURNAMES)}"
        town, province = rng.choice(TOWNS), rng.choice(PROVINCES)
        country = COUNTRIES[PROVINCES.index(province) % len(COUNTRIES)]
        where = EventLocation(
            country=country,
            admin1=Admin1Ref(name=province, code=f"{country}-{province[-3:].upper()}"),
            place=town,
            precision="city",
        )
        day = T0 + timedelta(hours=incident * 2)
        for copy in range(rng.randint(1, 5)):
            lang = rng.choice(["es", "en"])
            place = f"{town}, {province}"
            body = (
                f"Hombres armados secuestraron a {victim} en {place}. La policía busca a los captores."
                if lang == "es"
                else f"Gunmen kidnapped {victim} in {place}. The police are searching for the captors."
            )
            article_id = f"b{incident:06d}-{copy}"
            stamp = day + timedelta(hours=rng.randint(0, 40))
            msg = factories.tagged(
                factories.seen(article_id, text=body, title="", language=lang, published_at=stamp),
                labels=("kidnapping",),
            ).model_copy(
                update={"embedding": vector(lang, f"incident-{incident}", article_id), "location": where}
            )
            out.append(msg)
    rng.shuffle(out)
    return out[:n], incident
