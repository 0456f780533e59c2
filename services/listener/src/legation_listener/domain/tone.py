"""Tone (no I/O): how people write in a community, per language, as plain advice.

Read from the posts of a community (:class:`~legation_listener.domain.observed.Observed`),
per primary language with at least :data:`MIN_POSTS` posts:

- length: median words of title and text (links and accounts left out);
- questions: share of posts with a question mark (``?``, ``¿``, ``؟`` and the full-width one);
- hashtags per post, and the most used; emoji: share of posts with one; links: share of posts
  with one;
- replies: share of posts that answer another post (``in_reply_to``);
- institutions: share of posts that name (``@``) or answer an institution's account: a
  handle or name with a word such as gov, embassy, ministry, mfa, un, eu, parliament,
  council, president or minister (see :data:`_INSTITUTION`);
- formality in [0, 1]: starts at 0.5, + 0.1 for each letter of average word length above
  4.5 (at most + 0.3), - 0.5 x the share of chatty marks (emoji, a run of ``!`` or ``?``,
  a word in capitals, laughter such as lol/haha/jaja/mdr, contractions such as don't),
  clipped; ``formal`` at 0.6 and above, ``informal`` under 0.4, else ``neutral``.

The advice reads like "short (about 18 words), informal, questions welcome, Spanish, a
hashtag or two (#plastico), emoji are common, reply in thread". The rules are rules of
thumb chosen by hand, not trained: they describe; an officer decides.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from legation_listener.domain.observed import Observed

MIN_POSTS = 3
SHORT_WORDS = 40
LONG_WORDS = 150
QUESTIONS_WELCOME = 0.2
REPLIES_IN_THREAD = 0.3
EMOJI_COMMON = 0.25
LINKS_EXPECTED = 0.5
INSTITUTIONS_ADDRESSED = 0.1
FORMAL_AT = 0.6
INFORMAL_UNDER = 0.4

LANGUAGE_NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French",
    "hi": "Hindi", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch",
    "pl": "Polish", "pt": "Portuguese", "ru": "Russian", "sv": "Swedish", "tr": "Turkish",
    "uk": "Ukrainian", "zh": "Chinese", "fa": "Persian", "id": "Indonesian", "sw": "Swahili",
}  # fmt: skip

_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_ACCOUNT = re.compile(r"(?<![\w@])@[\w.@-]+")
_WORD = re.compile(r"[^\W\d_][\w'\u2019-]*", re.UNICODE)
_QUESTION = re.compile("[?\u00bf\u061f\uff1f]")
_EMOJI = re.compile(
    "[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f000-\U0001f2ff\U0001f900-\U0001f9ff]"
)
_SHOUT = re.compile(r"(?:!{2,}|\?{2,}|[!?]{3,})")
_LAUGH = re.compile(r"\b(?:lol|lmao|rofl|omg|wtf|(?:ha){2,}h?|(?:ja){2,}|(?:je){2,}|mdr|ptdr|"
                    r"xd|(?:k){3,}|jk|smh|tbh|imo)\b", re.IGNORECASE)  # fmt: skip
_CONTRACTION = re.compile(r"\b\w+(?:n't|'re|'ll|'ve|'m|'d)\b|\b(?:gonna|wanna|gotta|ya|u|ur)\b",
                          re.IGNORECASE)  # fmt: skip
_INSTITUTION = re.compile(
    r"(gov\b|\bgov|government|gobierno|gouvernement|regierung|embass|embajada|ambassade|botschaft"
    r"|ministry|minist[eè]re|ministerio|ministerium|\bmfa|foreign.?office|diplomat|consul"
    r"|\bun\b|^un[a-z]*$|unep|unfccc|\beu\b|europa|commission|parliament|parlement|senate"
    r"|congress|council|conseil|consejo|president|presiden|minister|ministro|ministre|mayor"
    r"|agency|\.gov\b|\.gob\b|\.gouv\b)",
    re.IGNORECASE,
)


@dataclass
class ToneProfile:
    """How posts in one language read in one community, and the advice drawn from it."""

    language: str
    mentions: int
    median_words: float
    question_share: float
    emoji_share: float
    link_share: float
    reply_share: float
    institution_share: float
    hashtags_per_mention: float
    formality: float
    register: str
    top_hashtags: list[str] = field(default_factory=list)
    recommendation: str = ""


def language_name(code: str) -> str:
    """An English name for a primary language subtag ("es" → "Spanish"), else the code."""
    return LANGUAGE_NAMES.get(code, code)


def is_institution(name: str) -> bool:
    """True when an account handle or name reads like an institution's."""
    return bool(name) and bool(_INSTITUTION.search(name))


def authors_by_ref(mentions: Sequence[Observed]) -> dict[str, str]:
    """Who wrote each item (by item id and URL), to tell whom a reply answers."""
    found: dict[str, str] = {}
    for m in mentions:
        who = " ".join(part for part in (m.author, m.author_id) if part)
        for ref in (m.item_id, m.url):
            if ref and who:
                found[ref] = who
    return found


def _words(text: str) -> list[str]:
    return _WORD.findall(_ACCOUNT.sub(" ", _URL.sub(" ", text)))


def formality(texts: Sequence[str]) -> float:
    """Formality in [0, 1] of some posts (see the module docstring)."""
    words = [w for text in texts for w in _words(text)]
    if not words:
        return 0.5
    mean_length = sum(len(w) for w in words) / len(words)
    marks = 0
    for text in texts:
        marks += len(_EMOJI.findall(text)) + len(_SHOUT.findall(text))
        marks += len(_LAUGH.findall(text)) + len(_CONTRACTION.findall(text))
        marks += sum(1 for w in _words(text) if len(w) >= 3 and w.isupper())
    chatty = min(1.0, marks / len(texts))
    value = 0.5 + min(0.3, max(-0.3, (mean_length - 4.5) * 0.1)) - 0.5 * chatty
    return round(min(1.0, max(0.0, value)), 3)


def register_of(value: float) -> str:
    """ "formal", "neutral" or "informal"."""
    if value >= FORMAL_AT:
        return "formal"
    if value < INFORMAL_UNDER:
        return "informal"
    return "neutral"


def profile(
    language: str, posts: Sequence[Observed], authors: Mapping[str, str] | None = None
) -> ToneProfile:
    """The tone of ``posts`` (one community, one language); ``authors`` tells whom replies
    answer (:func:`authors_by_ref`)."""
    authors = authors or {}
    texts = [m.full_text for m in posts]
    n = max(len(posts), 1)
    tags = Counter(tag.lower() for m in posts for tag in m.hashtags)

    def addresses_institution(m: Observed) -> bool:
        if any(is_institution(account) for account in m.mentioned_accounts):
            return True
        return bool(m.in_reply_to) and is_institution(authors.get(m.in_reply_to, ""))

    value = formality(texts)
    found = ToneProfile(
        language=language,
        mentions=len(posts),
        median_words=float(statistics.median(len(_words(t)) for t in texts)) if texts else 0.0,
        question_share=round(sum(1 for t in texts if _QUESTION.search(t)) / n, 3),
        emoji_share=round(sum(1 for t in texts if _EMOJI.search(t)) / n, 3),
        link_share=round(sum(1 for m in posts if m.links) / n, 3),
        reply_share=round(sum(1 for m in posts if m.in_reply_to) / n, 3),
        institution_share=round(sum(1 for m in posts if addresses_institution(m)) / n, 3),
        hashtags_per_mention=round(sum(len(m.hashtags) for m in posts) / n, 3),
        formality=value,
        register=register_of(value),
        top_hashtags=[f"#{tag}" for tag, _ in sorted(tags.items(), key=lambda p: (-p[1], p[0]))][
            :3
        ],
    )
    found.recommendation = recommend(found)
    return found


def recommend(tone: ToneProfile) -> str:
    """The plain advice of a profile (see the module docstring)."""
    words = round(tone.median_words)
    if tone.median_words <= SHORT_WORDS:
        parts = [f"short (about {words} words)"]
    elif tone.median_words <= LONG_WORDS:
        parts = [f"medium length (about {words} words)"]
    else:
        parts = [f"long-form (about {words} words)"]
    parts.append(tone.register)
    if tone.question_share >= QUESTIONS_WELCOME:
        parts.append("questions welcome")
    parts.append(language_name(tone.language) if tone.language != "und" else "language unclear")
    if tone.hashtags_per_mention >= 1.5:
        parts.append(f"hashtags expected ({', '.join(tone.top_hashtags)})")
    elif tone.hashtags_per_mention >= 0.3:
        parts.append(f"a hashtag or two ({', '.join(tone.top_hashtags[:2])})")
    else:
        parts.append("no hashtags")
    if tone.emoji_share >= EMOJI_COMMON:
        parts.append("emoji are common")
    if tone.link_share >= LINKS_EXPECTED:
        parts.append("link your sources")
    if tone.institution_share >= INSTITUTIONS_ADDRESSED:
        parts.append("institutions are addressed directly")
    parts.append("reply in thread" if tone.reply_share >= REPLIES_IN_THREAD else "post on its own")
    return ", ".join(parts)


def tone_profiles(
    posts: Sequence[Observed], authors: Mapping[str, str] | None = None
) -> list[ToneProfile]:
    """One profile per primary language with at least :data:`MIN_POSTS` posts, most posts
    first."""
    by_language: dict[str, list[Observed]] = {}
    for m in posts:
        by_language.setdefault((m.language or "und").split("-")[0].lower(), []).append(m)
    chosen = [
        (language, group) for language, group in by_language.items() if len(group) >= MIN_POSTS
    ]
    chosen.sort(key=lambda pair: (-len(pair[1]), pair[0]))
    return [profile(language, group, authors) for language, group in chosen]
