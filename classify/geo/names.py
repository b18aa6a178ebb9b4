"""Name normalisation and the small hand-written tables the packages do not carry.

What is here: how a name is folded for lookup (case, accents and punctuation ignored), the
Spanish and English demonyms of the countries the feeds report on, extra country aliases
("EE.UU.", "Reino Unido") and the words that mark a place name in text ("en", "municipio de",
"colonia"). Everything else comes from the GeoNames-derived packages (see ``gazetteer.py``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final

_WORD = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=65536)
def fold_word(word: str) -> str:
    """Lower case without accents: ``"Ríos"`` -> ``"rios"``, ``"Peñón"`` -> ``"penon"``."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(name: str) -> str:
    """A name's lookup key: folded words joined by single spaces (punctuation dropped)."""
    return " ".join(fold_word(w) for w in _WORD.findall(name))


def _folded(block: str) -> frozenset[str]:
    """A word table written as one block of text: its words, folded."""
    return frozenset(fold(w) for w in block.split())


def words(text: str) -> list[re.Match[str]]:
    return list(_WORD.finditer(text))


# ---- demonyms ----------------------------------------------------------------------------------

_ES_DEMONYMS: Final[dict[str, str]] = {
    "ecuatorian": "EC",
    "mexican": "MX",
    "colombian": "CO",
    "venezolan": "VE",
    "peruan": "PE",
    "bolivian": "BO",
    "chilen": "CL",
    "argentin": "AR",
    "uruguay": "UY",
    "paraguay": "PY",
    "guatemaltec": "GT",
    "hondureñ": "HN",
    "salvadoreñ": "SV",
    "panameñ": "PA",
    "dominican": "DO",
    "haitian": "HT",
    "cuban": "CU",
    "puertorriqueñ": "PR",
    "brasileñ": "BR",
    "nigerian": "NG",
    "estadounidens": "US",
    "canadiens": "CA",
    "costarricens": "CR",
    "nicaragüens": "NI",
    "español": "ES",
    "británic": "GB",
    "chin": "CN",
    "filipin": "PH",
    "italian": "IT",
    "afgan": "AF",
    "paquistan": "PK",
    "pakistan": "PK",
    "sirian": "SY",
    "iraquí": "IQ",
    "israelí": "IL",
    "palestin": "PS",
    "ucranian": "UA",
    "iraní": "IR",
    "egipci": "EG",
    "jamaiquin": "JM",
    "australian": "AU",
    "sudafrican": "ZA",
}
"""Spanish demonym stems; the endings -o/-a/-os/-as (or -e/-es, -ol/-ola/-oles) are added."""

_ES_REGIONAL_DEMONYMS: Final[dict[str, str]] = {
    "bonaerens": "AR",
    "santafesin": "AR",
    "tucuman": "AR",
    "mendocin": "AR",
    "rosarin": "AR",
    "neuquin": "AR",
    "regiomontan": "MX",
    "chilang": "MX",
    "sinaloens": "MX",
    "jalisciens": "MX",
    "michoacan": "MX",
    "guerrerens": "MX",
    "tamaulipec": "MX",
    "veracruzan": "MX",
    "oaxaqueñ": "MX",
    "chihuahuens": "MX",
    "sonorens": "MX",
    "guayaquileñ": "EC",
    "quiteñ": "EC",
    "manabit": "EC",
    "caleñ": "CO",
    "bogotan": "CO",
    "antioqueñ": "CO",
    "barranquiller": "CO",
    "caraqueñ": "VE",
    "chavist": "VE",  # chavismo is Venezuela's ruling movement
    "zulian": "VE",
    "marabin": "VE",
    "limeñ": "PE",
    "cusqueñ": "PE",
    "chalac": "PE",
    "cruceñ": "BO",
    "paceñ": "BO",
    "cochabambin": "BO",
    "santiaguin": "CL",
    "tegucigalpens": "HN",
    "sampedran": "HN",
}
"""Demonyms of provinces and cities that belong to one country only ("la localidad bonaerense
de ...", "un comerciante cruceño"): they say the country, as a national demonym does.
("cordobés", "porteño", "cartagenero" are left out: two countries have the place.)"""

_EN_DEMONYMS: Final[dict[str, str]] = {
    "Ecuadorian": "EC",
    "Ecuadoran": "EC",
    "Mexican": "MX",
    "Colombian": "CO",
    "Venezuelan": "VE",
    "Peruvian": "PE",
    "Bolivian": "BO",
    "Chilean": "CL",
    "Argentine": "AR",
    "Argentinian": "AR",
    "Uruguayan": "UY",
    "Paraguayan": "PY",
    "Guatemalan": "GT",
    "Honduran": "HN",
    "Salvadoran": "SV",
    "Salvadorean": "SV",
    "Panamanian": "PA",
    "Dominican": "DO",
    "Haitian": "HT",
    "Cuban": "CU",
    "Puerto Rican": "PR",
    "Brazilian": "BR",
    "Nigerian": "NG",
    "Canadian": "CA",
    "Costa Rican": "CR",
    "Nicaraguan": "NI",
    "Spaniard": "ES",
    "British": "GB",
    "Filipino": "PH",
    "Pakistani": "PK",
    "Afghan": "AF",
    "Iraqi": "IQ",
    "Syrian": "SY",
    "Indian": "IN",
    "Kenyan": "KE",
    "Cameroonian": "CM",
    "Malian": "ML",
    "Nigerien": "NE",
    "American": "US",
    "Israeli": "IL",
    "Palestinian": "PS",
    "Ukrainian": "UA",
    "Iranian": "IR",
    "Egyptian": "EG",
    "Saudi": "SA",
    "Lebanese": "LB",
    "Somali": "SO",
    "Ethiopian": "ET",
    "Ghanaian": "GH",
    "Jamaican": "JM",
    "Australian": "AU",
    "South African": "ZA",
    "Turkish": "TR",
}


def _spanish_forms(stem: str) -> list[str]:
    if stem.endswith("ens") or stem.endswith("ns"):
        return [stem + "e", stem + "es"]
    if stem.endswith("ol"):
        return [stem, stem + "a", stem + "es", stem + "as"]
    if stem.endswith("í"):
        return [stem, stem + "es"]
    if stem in ("uruguay", "paraguay"):
        return [stem + "o", stem + "a", stem + "os", stem + "as"]
    return [stem + e for e in ("o", "a", "os", "as")]


_NATIONAL_BODIES: Final[dict[str, str]] = {
    "FBI": "US",
    "NYPD": "US",
    "LAPD": "US",
    "Border Patrol": "US",
    "Scotland Yard": "GB",
    "Guardia Civil": "ES",
    "Mossos": "ES",
    "Ertzaintza": "ES",
    "Audiencia Nacional": "ES",
    "Sedena": "MX",
    "Semar": "MX",
    "SSPC": "MX",
    "INEGI": "MX",
    "Policía Ministerial": "MX",
    "ministeriales": "MX",  # "agentes ministeriales": the state prosecutors' police
    "Gaula": "CO",
    "Dijín": "CO",
    "Sijín": "CO",
    "Cicpc": "VE",
    "Sebin": "VE",
    "FANB": "VE",
    "GNB": "VE",
    "OIJ": "CR",
    "Dirincri": "PE",
    "PNP": "PE",
    "Carabineros": "CL",
    "FELCC": "BO",
    "FELCN": "BO",
    "Dinased": "EC",
    "EFCC": "NG",
}
"""A country's own police, army and courts (names no other country uses): where they act, the
story is, as with "autoridades venezolanas". Read like a demonym of full weight."""

NATIONAL_BODIES: Final = frozenset(fold(name) for name in _NATIONAL_BODIES) | frozenset(
    " ".join(fold(name)) for name in _NATIONAL_BODIES if name.isupper() and name.isalpha()
)


def demonyms() -> dict[str, str]:
    """Folded demonym -> ISO alpha-2, Spanish (lower case in text) and English."""
    out: dict[str, str] = {}
    for stem, cc in (_ES_DEMONYMS | _ES_REGIONAL_DEMONYMS).items():
        for form in _spanish_forms(stem):
            out[fold(form)] = cc
    for name, cc in _EN_DEMONYMS.items():
        out[fold(name)] = cc
        out[fold(name + "s")] = cc
    # Ambiguous or too common as words: "china" (the country), "chino" (a name), "cubana" ...
    for word in ("china", "chinas", "chino", "chinos"):
        out.pop(word, None)
    for name, cc in _NATIONAL_BODIES.items():
        out[fold(name)] = cc
        if name.isupper() and name.isalpha():
            out[" ".join(fold(name))] = cc  # "F.B.I." folds to "f b i"
    return out


# ---- countries ----------------------------------------------------------------------------------

COUNTRY_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "US": ("EE.UU.", "EE. UU.", "EEUU", "Estados Unidos", "United States", "U.S.", "USA", "US"),
    "GB": ("UK", "U.K.", "Britain", "Great Britain", "Gran Bretaña", "Reino Unido"),
    "MX": ("Mexico", "México", "Méjico"),
    "VE": ("Venezuela",),
    "BO": ("Bolivia",),
    "KR": ("South Korea", "Corea del Sur"),
    "RU": ("Russia", "Rusia"),
    "DO": ("República Dominicana", "Dominican Republic"),
    "CD": ("Congo", "RD Congo", "DR Congo"),
    "IR": ("Iran", "Irán"),
    "SY": ("Siria", "Syria"),
}
"""Common names the ISO names miss; ``US`` and ``UK`` only match in capitals."""

CAPITALS_ONLY: Final = frozenset({"us", "uk", "u s", "u k"})

# ---- cues in the text ---------------------------------------------------------------------------

LOCATIVE_BEFORE: Final = _folded("""
en in de del at near cerca from desde hacia outside municipio ciudad city town localidad poblado
comunidad provincia province estado state departamento department cantón canton región region
barrio colonia parroquia county condado distrito district village aldea vereda corregimiento
zona sector norte sur este oeste north south east west porteña capital
""")
"""A word just before a name that says the name is a place ("en Quevedo", "municipio de X")."""

SUB_CITY_CUES: Final = _folded("""
colonia barrio vereda corregimiento cooperativa ciudadela calle avenida av carrera kilómetro km
street st road rd avenue ave boulevard blvd neighborhood neighbourhood sector recinto
urbanización fraccionamiento alcaldía comuna caserío asentamiento township block manzana highway
carretera autopista mall airport aeropuerto estación station barrios colonias calles comisaría
fraccionamientos zona
""")

FACILITY_BEFORE: Final = _folded("""
banco bank club universidad university hospital estadio stadium plaza parque park hotel escuela
school colegio centro center calle avenida av street avenue boulevard blvd colonia barrio
barrios colonias fraccionamiento cooperativa ciudadela vereda sector urbanización hacienda finca
estancia rancho aldea caserío comisaría edificio torre puente bridge mercado market iglesia
church
""")
"""A word before a name that makes it a street, a neighbourhood or a building, not a town."""

NEIGHBOURHOOD_HEADS: Final = _folded("""
valle villa bosques lomas jardines cerro club metro tren residencial parque hacienda paseo
rincón colinas campestre praderas barrio colonia fraccionamiento unidad conjunto estación
hospital
""")
"""``<head> de [la] <name>``: a neighbourhood, station or building named after a place
("Bosques de San Sebastián", "Metro Villa de Aragón"), never the place itself."""

STATE_BEFORE: Final = _folded("""
autoridades autoridad gobierno gobiernos presidente presidenta mandatario mandataria policia
ejercito fiscalia regimen fuerzas militares justicia congreso senado armada marina tropas
cancilleria ministerio estado guardia gendarmeria canciller
""")
STATE_AFTER: Final = _folded("""
authorities authority government president police army military troops forces officials
prosecutors navy court courts
""")
""""autoridades venezolanas", "el presidente venezolano", "Nigerian troops": a demonym that names
a state's own institution says where they act, as much as the country's name would."""

PASSPORT_BEFORE: Final = _folded("""
ciudadano ciudadana ciudadanos ciudadanas nacionalidad origen turista turistas migrante
migrantes connacional connacionales compatriota compatriotas
""")
PASSPORT_AFTER: Final = _folded("""
citizen citizens national nationals tourist tourists migrant migrants
""")
""""dos ciudadanos colombianos", "de nacionalidad nicaragüense", "a Canadian citizen": whose
passport, not where it happened."""

ORIGIN_BEFORE: Final = _folded("""
oriundo oriunda oriundos oriundas originario originaria originarios originarias natural
naturales native vecino vecina vecinos vecinas
""")
""""oriundo de Ocaña": where a person comes from, not where the event happened."""

STRONG_LOCATIVE: Final = _folded("""
ciudad municipio localidad city town cantón canton distrito
""")
"""Before a name (optionally with "de"), makes even a common word a town: "ciudad de Pilar"."""

DOMESTIC_CUES: Final = (
    "nuestro pais",
    "del pais",
    "en el pais",
    "todo el pais",
    "distintas regiones del pais",
    "a nivel nacional",
    "the country",
    "nationwide",
    "this country",
)
"""Phrases that place a story in the outlet's own country (used only with a country hint)."""

CAPITAL_CUES: Final = _folded("""
capital capitalina capitalino capitalinas capitalinos capitalinos
""")
""""la capital", "policías capitalinos": the country's capital, once the country is known."""

LOCAL_NEWS_CUES: Final = _folded("""
estadio stadium municipio funcionario policía policias police fiscalía fiscal prosecutor
municipal alcalde mayor gobernador governor
ministerio ministro sheriff ejército army gendarmería carabineros cárcel prison penitenciaria
juez judge banco diputados congreso senado presidente president comunal vecinos
""")
"""Words of local news: with a country hint and no place named, the story is the outlet's
country's (a police report that names only a street); a film review stays ``none``."""
"""Words that put the event inside a city: a street, a neighbourhood, a rural sub-division."""

DIVISION_WORDS: Final = _folded("""
estado state provincia province departamento department region community comunidad
""")
""""estado de Sinaloa", "state of Mexico": before a name, the name is the division (never the
town or the country of the same name). Articles and "de" alone say nothing of the kind."""

ADMIN1_WORDS: Final = _folded("""
estado state provincia province departamento department región region comunidad community
autonomous autónoma district distrito federal metropolitan metropolitana of de del la el the
""")
"""Generic words dropped from an admin1 name to make an alias ("Estado de Sinaloa" -> "sinaloa")."""

NOT_PLACES: Final = _folded("""
la el los las san santa para como este sur norte centro mayo junio julio enero marzo abril
agosto lunes martes domingo police policia ejercito army justicia victoria libertad paz union
progreso esperanza concordia independencia reforma guadalupe dolores mercedes trinidad carmen
soledad pilar belen consuelo jesus cristo maria jose juan luis carlos pedro manuel miguel
antonio francisco jorge pablo david daniel alberto mario victor ana national nacional general
president presidente march may june will said new the a of and y o no si it this that when after
before during but on at by an as is was he she they we his her segun tras con sin por al un una
su sus lo le les se que cuando donde mas tambien hoy ayer fiscalia gobierno government court
corte tribunal ministerio cartel guardia marina navy twitter facebook whatsapp google reuters
efe afp ap cnn bbc europa america africa asia sierra valle costa rio puerto isla playa monte
villa real nuevo nueva santo marcos granada salvador dios bravo blanco negro grande chapo zeta
zetas golfo pacifico atlantico caribe capital central estacion pese halle delgado mobile
hollywood leones
""")
"""Single words that match a GeoNames town but are far more often something else; they only
block towns under 100,000 people (Florida the state and Granada the city still match)."""
