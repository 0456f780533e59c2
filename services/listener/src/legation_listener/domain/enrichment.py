"""Enrichment of an item before it leaves as a Mention: every label with the model that made it.

- text: Unicode NFC, control and zero-width characters removed, whitespace collapsed
  (:func:`normalise_text`); the models read a further-normalised copy
  (:func:`~legation_listener.models.linear.model_text`);
- language: py3langid (142 languages, works on tweets), with its probability as the
  confidence in ``Mention.language_detection``; too little text or too low a probability
  gives "und" rather than a guess;
- sentiment: one trained model per language (TF-IDF n-grams + logistic regression on UMSAB:
  ar, de, en, es, fr, it, pt); any other language ("ru", "zh"...) or a model unsure of its
  answer gives "unknown";
- language also tells romanised Hindi ("hi-Latn"), which py3langid reads as English or
  "und": a small model trained on UMSAB's Hindi tweets against the six Latin-script
  languages decides for Latin-script text (:func:`romanised_hindi`);
- stance toward the tracked issue (favour / against / neutral): the issue's own model when
  analysts' labels trained one (:mod:`legation_listener.models.issue`), served only when it
  beat the majority class on held-back labels, else "unknown"; an issue without labels gets
  the English model trained on SemEval-2016 with the target's words masked, given the
  issue's terms masked the same way; other languages and unsure answers give "unknown";
- relevance to the issue: the issue's relevance model, on the same terms ("unknown" without);
- hashtags, mentioned accounts, links, named entities (:mod:`.entities`);
- influence in [0, 1] from the author's reach (:func:`influence`);
- near-duplicates (:mod:`.duplicates`): a copy names its original in ``duplicate_of``.

All models ship inside the package (numpy arrays, py3langid's own tables) and load once, on
first use. See the listener README ("Models") for figures, limits and retraining.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Sequence
from datetime import UTC
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from legation.events.v1 import listen_pb2
from legation_listener.domain.duplicates import DuplicateIndex
from legation_listener.domain.entities import extract_entities
from legation_listener.models.issue import (
    RELEVANCE,
    STANCE,
    IssueModels,
    shared_issue_models,
)
from legation_listener.models.linear import LinearTextModel, load_shipped

UNDETERMINED = "und"
UNKNOWN = "unknown"
LANGID_MODEL = "py3langid"
# Below this probability the detector's best guess is not reported as the language. On the
# UMSAB validation tweets (seven languages) guesses at or above it are right 99.0% of the
# time and cover 94.6% of tweets; on tweets of at most 50 characters, 96.9% and 79%. (0.5
# would gain 0.3 points of precision and lose 15 points of coverage on short posts.)
MIN_DETECTION_PROBABILITY = 0.3
# Below this many words (in scripts that separate words) there is too little to tell.
MIN_WORDS_TO_DETECT = 2
# Scripts written without spaces: this many of their characters are enough.
MIN_IDEOGRAPHS_TO_DETECT = 3
# A three-way model whose best class is below this is not sure enough to be reported.
MIN_SENTIMENT_PROBABILITY = 0.45
# Across targets it never saw the stance model is weak (see the README); below this it is
# hardly better than chance, so it says "unknown".
MIN_STANCE_PROBABILITY = 0.5
# Romanised Hindi: the detector's P(hi) at which Latin-script text is filed "hi-Latn" (chosen
# on the TRAIN split: 0.5 took 4% of English tweets, 0.7 0.8% for 95% of Hindi ones).
MIN_ROMANISED_HINDI_PROBABILITY = 0.7
# Fewer words than this are never filed romanised Hindi ("Hi there" is English).
MIN_WORDS_ROMANISED_HINDI = 3
ROMANISED_HINDI = "hi-Latn"
ROMANISED_HINDI_FILENAME = "langid-hi-latn.npz"
# Latin-script text: at least this share of its letters are ASCII letters.
MIN_LATIN_SHARE = 0.8
# Reach at which influence saturates (10 million followers give 1.0).
INFLUENCE_SATURATION = 10_000_000
# A copy spreads someone else's story: its author counts half.
COPY_INFLUENCE_FACTOR = 0.5
# Dialects the detector tells apart that the listener files under their macrolanguage, so
# `lang:ar` finds Egyptian and Moroccan posts and the Arabic models read them.
_MACROLANGUAGE = {"arz": "ar", "ary": "ar", "zxx": UNDETERMINED}

_TAG = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*$")
_WORD = re.compile(r"\w+")
_IDEOGRAPH = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACE = re.compile(r"\s+")
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<![\w#&/])#(\w*[^\W\d_]\w*)")
_ACCOUNT = re.compile(r"(?<![\w@/.])@([A-Za-z0-9_](?:[\w.-]*\w)?(?:@[\w-]+(?:\.[\w-]+)+)?)")
_TRAILING = ".,;:!?]}'\"\u00bb\u201d\u2019\u2026"

_models_lock = threading.Lock()


def normalise_text(text: str) -> str:
    """Display text made comparable: NFC (composed accents), no control or zero-width
    characters, whitespace runs as one space, trimmed. Letters are not folded further
    (full-width or ligatures stay as written): that is for the models' own copy."""
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def normalise_language_tag(tag: str) -> str:
    """A BCP 47 tag in its usual case ("en-us" → "en-US", "zh-cn" → "zh-CN"); "und" when
    ``tag`` is empty or malformed."""
    tag = tag.strip()
    if not tag or not _TAG.match(tag):
        return UNDETERMINED
    primary, *rest = re.split(r"[-_]", tag)
    parts = [primary.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            parts.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            parts.append(part.title())
        else:
            parts.append(part.lower())
    return "-".join(parts)


def primary_language(tag: str) -> str:
    """The language subtag of a BCP 47 tag ("en-GB" → "en"), dialects the listener files
    under their macrolanguage folded ("arz" → "ar")."""
    primary = tag.split("-", 1)[0].lower()
    return _MACROLANGUAGE.get(primary, primary)


@cache
def _langid_version() -> str:
    try:
        return version("py3langid")
    except PackageNotFoundError:  # pragma: no cover - installed with the listener
        return ""


@cache
def _identifier() -> object:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _enough_text(text: str) -> bool:
    if len(_IDEOGRAPH.findall(text)) >= MIN_IDEOGRAPHS_TO_DETECT:
        return True
    words = [w for w in _WORD.findall(text) if not w.isdigit()]
    return len(words) >= MIN_WORDS_TO_DETECT


def _detection_text(text: str) -> str:
    # Links and handles are in no language; they would pull every post towards English.
    text = _URL_IN_TEXT.sub(" ", text)
    text = _ACCOUNT.sub(" ", text)
    return unicodedata.normalize("NFKC", text)


def language_detection(text: str) -> listen_pb2.Label:
    """The language of ``text``: value is a BCP 47 tag ("und" when the text is too short
    or the best guess too unlikely), score the detector's probability for its best guess."""
    cleaned = _detection_text(text)
    model, model_version = LANGID_MODEL, _langid_version()
    if not _enough_text(cleaned):
        return listen_pb2.Label(value=UNDETERMINED, score=0.0, model=model,
                                model_version=model_version)  # fmt: skip
    with _models_lock:
        identifier = _identifier()
    language, probability = identifier.classify(cleaned)  # type: ignore[attr-defined]
    tag = primary_language(normalise_language_tag(str(language)))
    hindi = romanised_hindi(cleaned)
    if hindi is not None:
        return hindi
    if probability < MIN_DETECTION_PROBABILITY or tag == UNDETERMINED:
        tag = UNDETERMINED
    return listen_pb2.Label(value=tag, score=float(probability), model=model,
                            model_version=model_version)  # fmt: skip


@cache
def romanised_hindi_model() -> LinearTextModel | None:
    """The shipped romanised-Hindi detector (classes "other", "hi")."""
    with _models_lock:
        return load_shipped(ROMANISED_HINDI_FILENAME)


def latin_script(text: str) -> bool:
    """True when at least :data:`MIN_LATIN_SHARE` of the text's letters are ASCII."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isascii() for c in letters) >= MIN_LATIN_SHARE * len(letters)


def romanised_hindi(cleaned: str) -> listen_pb2.Label | None:
    """``hi-Latn`` with the detector's probability when Latin-script ``cleaned`` text of at
    least :data:`MIN_WORDS_ROMANISED_HINDI` words reads as romanised Hindi (P(hi) at least
    :data:`MIN_ROMANISED_HINDI_PROBABILITY`), else None (py3langid's answer stands)."""
    words = [w for w in _WORD.findall(cleaned) if not w.isdigit()]
    if len(words) < MIN_WORDS_ROMANISED_HINDI or not latin_script(cleaned):
        return None
    model = romanised_hindi_model()
    if model is None:
        return None
    probability = model.probabilities(cleaned).get("hi", 0.0)
    if probability < MIN_ROMANISED_HINDI_PROBABILITY:
        return None
    return listen_pb2.Label(value=ROMANISED_HINDI, score=probability, model=model.name,
                            model_version=model.version)  # fmt: skip


def detect_language(text: str) -> str:
    """The most likely language of ``text`` as a BCP 47 tag, or "und" when the text is too
    short or no language is likely enough."""
    return language_detection(text).value


@cache
def sentiment_model(language: str) -> LinearTextModel | None:
    """The shipped sentiment model of a language subtag, None when there is none."""
    with _models_lock:
        return load_shipped(f"sentiment-{language}.npz")


@cache
def stance_model() -> LinearTextModel | None:
    """The shipped English stance model."""
    with _models_lock:
        return load_shipped("stance-en.npz")


def sentiment_languages() -> list[str]:
    """The language subtags that have a sentiment model."""
    from legation_listener.models.datasets import SENTIMENT_LANGUAGES

    return [code for code in SENTIMENT_LANGUAGES.values() if sentiment_model(code)]


def load_models() -> None:
    """Loads the language identifier, every shipped model and the place names now (about
    a second), so that the first mention after a start is not the one that waits for them."""
    with _models_lock:
        _identifier()
    sentiment_languages()
    stance_model()
    romanised_hindi_model()
    extract_entities("Geneva")


def _unknown(model: str = "none", model_version: str = "") -> listen_pb2.Label:
    return listen_pb2.Label(value=UNKNOWN, score=0.0, model=model, model_version=model_version)


def sentiment(text: str, language: str) -> listen_pb2.Label:
    """The sentiment of ``text`` in ``language``: "positive", "negative" or "neutral" with
    score P(positive) - P(negative) in [-1, 1]; "unknown" when no model reads the language
    (model "none") or the model's best class is below :data:`MIN_SENTIMENT_PROBABILITY`
    (then it names itself)."""
    model = sentiment_model(primary_language(language)) if text.strip() else None
    if model is None:
        return _unknown()
    probabilities = model.probabilities(text)
    best = max(probabilities, key=probabilities.__getitem__)
    if probabilities[best] < MIN_SENTIMENT_PROBABILITY:
        return _unknown(model.name, model.version)
    return listen_pb2.Label(
        value=best,
        score=probabilities["positive"] - probabilities["negative"],
        model=model.name,
        model_version=model.version,
    )


def issue_terms(issue: listen_pb2.TrackedIssue, matched: Sequence[str] = ()) -> list[str]:
    """What names the issue in a text: the terms the item matched, the issue's keywords and
    its name (the stance model reads them as its target)."""
    terms = [t.strip('"*') for t in (*matched, *issue.keywords, issue.name)]
    return [t for t in terms if len(t) >= 2]


def issue_label(
    task: str, issue_id: str, text: str, target: Sequence[str], models: IssueModels | None = None
) -> listen_pb2.Label | None:
    """The issue's own model's answer for ``task`` (its most probable class, score its
    probability: the validated decision); "unknown" naming the model when the issue's model
    was refused, not trained yet or short of labels (its reason is in ``ListModels``); None
    when the issue has no labels for ``task``."""
    trained = (models if models is not None else shared_issue_models()).get(issue_id, task)
    if trained is None:
        return None
    if not trained.served or trained.model is None or not text.strip():
        return _unknown(trained.name, trained.version)
    probabilities = trained.model.probabilities(text, target if task == STANCE else ())
    best = max(probabilities, key=probabilities.__getitem__)
    return listen_pb2.Label(value=best, score=probabilities[best], model=trained.model.name,
                            model_version=trained.model.version)  # fmt: skip


def relevance(
    text: str, issue_id: str, target: Sequence[str], models: IssueModels | None = None
) -> listen_pb2.Label:
    """Whether ``text`` is about the issue ("relevant", "irrelevant"), by the issue's
    relevance model; "unknown" (model "none") for an issue without relevance labels."""
    return issue_label(RELEVANCE, issue_id, text, target, models) or _unknown()


def stance(
    text: str,
    language: str,
    target: Sequence[str],
    issue_id: str = "",
    models: IssueModels | None = None,
) -> listen_pb2.Label:
    """The stance of ``text`` toward the issue named by ``target`` terms: "favour",
    "against" or "neutral" with the model's probability as score. The issue's own model
    decides when analysts labelled its stance (:func:`issue_label`); otherwise the pooled
    English model, "unknown" for languages it does not read (model "none") or an unsure
    answer."""
    own = issue_label(STANCE, issue_id, text, target, models) if issue_id else None
    if own is not None:
        return own
    model = stance_model() if primary_language(language) == "en" and text.strip() else None
    if model is None:
        return _unknown()
    probabilities = model.probabilities(text, target)
    best = max(probabilities, key=probabilities.__getitem__)
    if probabilities[best] < MIN_STANCE_PROBABILITY:
        return _unknown(model.name, model.version)
    return listen_pb2.Label(
        value=best, score=probabilities[best], model=model.name, model_version=model.version
    )


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def hashtags(text: str) -> list[str]:
    """Hashtags without "#", lower-cased, each once, in order."""
    return _unique([tag.lower() for tag in _HASHTAG.findall(text)])


def mentioned_accounts(text: str) -> list[str]:
    """Accounts the text mentions as written ("@alice", "@bob@mastodon.social",
    "@carol.bsky.social"), each once, in order."""
    return _unique([f"@{handle}" for handle in _ACCOUNT.findall(text)])


def links(text: str) -> list[str]:
    """The http(s) links in the text, trailing punctuation removed, each once, in order."""
    found = []
    for url in _URL_IN_TEXT.findall(text):
        # Punctuation after a link ends the sentence, except a ")" the link itself opened
        # (Wikipedia-style "Talks_(2026)").
        while url and url[-1] in _TRAILING + ")":
            if url[-1] == ")" and url.count("(") >= url.count(")"):
                break
            url = url[:-1]
        found.append(url)
    return _unique(found)


def entities(text: str) -> list[listen_pb2.Entity]:
    """Named entities of the text (see :mod:`.entities` for the rules)."""
    return [listen_pb2.Entity(text=e.text, kind=e.kind) for e in extract_entities(text)]


def influence(reach: int, is_copy: bool = False) -> float:
    """Influence in [0, 1]: log10(1 + reach) / log10(1 + 10,000,000), capped at 1, halved
    for a copy of someone else's story. The logarithm because audiences span orders of
    magnitude (100 followers: 0.29, 10,000: 0.57, 1 million: 0.86); 0 when reach is
    unknown (0)."""
    if reach <= 0:
        return 0.0
    score = min(1.0, math.log10(1 + reach) / math.log10(1 + INFLUENCE_SATURATION))
    return score * (COPY_INFLUENCE_FACTOR if is_copy else 1.0)


_shared_duplicates = DuplicateIndex()


def shared_duplicate_index() -> DuplicateIndex:
    """The process's duplicate index, used when a caller passes none (see
    :mod:`.duplicates` for how it is rebuilt after a restart)."""
    return _shared_duplicates


def label_mention(
    mention: listen_pb2.Mention,
    issue: listen_pb2.TrackedIssue,
    declared_language: str,
    models: IssueModels | None = None,
) -> None:
    """Sets the model labels of ``mention`` (normalised title and text): language and its
    detection (``declared_language``, the source's own, stands when the detector disagrees),
    sentiment, stance and relevance toward ``issue``. Enrichment and re-scoring share it."""
    full = f"{mention.title}. {mention.text}" if mention.title else mention.text
    detected = language_detection(full)
    declared = normalise_language_tag(declared_language)
    if declared == UNDETERMINED:
        mention.language = detected.value
        mention.language_detection.CopyFrom(detected)
    elif primary_language(declared) == primary_language(detected.value):
        mention.language = declared
        mention.language_detection.CopyFrom(detected)
    else:
        # The source declared the language and the detector disagrees or cannot tell: the
        # declaration stands (it comes from the author or the platform), and says so.
        mention.language = declared
        mention.language_detection.CopyFrom(
            listen_pb2.Label(value=declared, score=1.0, model="declared", model_version="")
        )
    terms = issue_terms(issue, mention.matched_keywords)
    mention.sentiment.CopyFrom(sentiment(full, mention.language))
    mention.stance.CopyFrom(stance(full, mention.language, terms, issue.issue_id, models))
    mention.relevance.CopyFrom(relevance(full, issue.issue_id, terms, models))


def enrich_mention(
    mention: listen_pb2.Mention,
    issue: listen_pb2.TrackedIssue,
    duplicates: DuplicateIndex | None = None,
    models: IssueModels | None = None,
) -> listen_pb2.Mention:
    """Fills the enrichment fields of ``mention`` (built with its title, text, language,
    reach, published_at and matched_keywords) and returns it: normalised text, language
    detection (the language itself too when it was "und" or empty), sentiment, stance and
    relevance toward ``issue`` (``models``: the per-issue models, the process's by default),
    hashtags, accounts, links, entities, duplicate_of and influence."""
    mention.title = normalise_text(mention.title)
    mention.text = normalise_text(mention.text)
    full = f"{mention.title}. {mention.text}" if mention.title else mention.text
    label_mention(mention, issue, mention.language, models)
    del mention.hashtags[:]
    mention.hashtags.extend(hashtags(full))
    del mention.mentioned_accounts[:]
    mention.mentioned_accounts.extend(mentioned_accounts(full))
    del mention.links[:]
    mention.links.extend(links(full))
    del mention.entities[:]
    mention.entities.extend(entities(full))
    index = duplicates if duplicates is not None else _shared_duplicates
    mention.duplicate_of = index.check(
        issue.issue_id, mention.mention_id, full, mention.published_at.ToDatetime(tzinfo=UTC)
    )
    mention.influence = influence(mention.reach, is_copy=bool(mention.duplicate_of))
    return mention
