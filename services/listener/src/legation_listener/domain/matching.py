"""Which tracked issues an item talks about: keyword matching on word boundaries."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from legation.events.v1 import listen_pb2


@lru_cache(maxsize=4096)
def keyword_pattern(keyword: str) -> re.Pattern[str]:
    """A case-insensitive pattern for ``keyword`` as whole words; the words of a multi-word
    keyword may be separated by any run of whitespace."""
    words = keyword.split()
    if not words:
        raise ValueError("a keyword cannot be blank")
    # Lookarounds instead of \b so keywords that start or end with a non-word character
    # ("C++", "#COP29") still match on their own.
    body = r"\s+".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def matched_keywords(keywords: Iterable[str], *texts: str) -> list[str]:
    """The keywords found in any of ``texts``, in the order given, without duplicates."""
    found: list[str] = []
    for keyword in keywords:
        if not keyword.strip() or keyword in found:
            continue
        pattern = keyword_pattern(keyword)
        if any(pattern.search(text) for text in texts):
            found.append(keyword)
    return found


def match_issue(issue: listen_pb2.TrackedIssue, title: str, text: str) -> list[str]:
    """The issue's keywords that the item's title or text contains (empty: no match)."""
    return matched_keywords(issue.keywords, title, text)
