"""Enrichment of an item: its language and its sentiment, each with the model that said so.

Both models are pure computation (their data ships inside their packages and is loaded once,
on first use).
"""

from __future__ import annotations

import re
import threading
from functools import cache

from langdetect import DetectorFactory, detect_langs
from langdetect.lang_detect_exception import LangDetectException
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from legation.events.v1 import listen_pb2

UNDETERMINED = "und"
VADER_MODEL = "vader"
VADER_VERSION = "3.3.2"
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
# Below this many words langdetect's guesses are close to random.
MIN_WORDS_TO_DETECT = 3
# Below this probability the best guess is not reported as the item's language.
MIN_DETECTION_PROBABILITY = 0.5

# langdetect samples randomly; a fixed seed makes the same text always get the same answer.
DetectorFactory.seed = 0
# langdetect loads its profiles into a module global on first use, without a lock.
_detect_lock = threading.Lock()
_TAG = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*$")
_WORD = re.compile(r"\w+")


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
    """The language subtag of a BCP 47 tag ("en-GB" → "en")."""
    return tag.split("-", 1)[0].lower()


def detect_language(text: str) -> str:
    """The most likely language of ``text`` as a BCP 47 tag, or "und" when the text is too
    short or no language is likely enough."""
    if len(_WORD.findall(text)) < MIN_WORDS_TO_DETECT:
        return UNDETERMINED
    try:
        with _detect_lock:
            guesses = detect_langs(text)
    except LangDetectException:
        return UNDETERMINED
    if not guesses or guesses[0].prob < MIN_DETECTION_PROBABILITY:
        return UNDETERMINED
    return normalise_language_tag(str(guesses[0].lang))


@cache
def _vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def sentiment_label(compound: float) -> str:
    """VADER's customary reading of a compound score."""
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def sentiment(text: str, language: str) -> listen_pb2.Label:
    """The sentiment of ``text``. Only English has a model (VADER); any other language gets
    "unknown" rather than a guess from a model that does not read it."""
    if primary_language(language) != "en" or not text.strip():
        return listen_pb2.Label(value="unknown", score=0.0, model="none", model_version="")
    compound = float(_vader().polarity_scores(text)["compound"])
    return listen_pb2.Label(
        value=sentiment_label(compound),
        score=compound,
        model=VADER_MODEL,
        model_version=VADER_VERSION,
    )
