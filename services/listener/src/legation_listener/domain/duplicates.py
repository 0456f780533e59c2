"""Near-duplicate detection: reposts and syndicated copies of one story, counted once.

Each tracked issue has its own index of *originals* (mentions that are not copies). A new
mention whose text is the same as an original's once normalised, or whose character
5-gram MinHash (datasketch, 64 permutations, fixed seed) finds an original with estimated
Jaccard similarity of at least :data:`SIMILARITY` through LSH, is a copy: its
``duplicate_of`` is the original's mention id. Among several originals the earliest
published wins (then the smallest id), so the answer does not depend on index order. A
text of fewer than :data:`MIN_CHARS` characters once normalised is never a copy.

Restart: the index is *rebuilt deterministically* rather than stored. The mentions topic
already records every decision (``duplicate_of`` travels in each Mention), so replaying it
through :meth:`DuplicateIndex.observe` gives back the same originals in any replay order;
a second store would only be one more thing to keep consistent with the topic. Asking
again about a mention id already seen (a poll retried after a failed send) returns the
same answer as the first time, so a retry never makes a mention a copy of itself.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from datasketch import MinHash, MinHashLSH

NUM_PERM = 64
SIMILARITY = 0.6
SHINGLE = 5
# Below this many characters (normalised) a text is not compared at all: "Great news!" from
# a hundred people is a hundred reactions, not one story.
MIN_CHARS = 20
# Below this many characters (normalised) only exact copies count: the MinHash of a very
# short text is too coarse, and two short posts alike by chance are not one story.
MIN_FUZZY_CHARS = 40
# A copy cut short ("RT @x: first 100 characters…") shares its start with the original:
# this many leading characters (normalised) equal make a copy whatever the similarity.
PREFIX_CHARS = 60
# Originals kept per issue; the oldest go first.
MAX_ORIGINALS = 50_000
# Decisions remembered for retries (a retry comes within minutes; this is generous).
MAX_DECISIONS = 200_000
SEED = 1
# datasketch's default permutation scheme since 2.0, named so an upgrade cannot change it.
SCHEME = "affine32"

_REPOST = re.compile(r"^(?:rt|via|repost|boost(?:ed)?)\b\s*(?:@[\w.@-]+)?\s*:?\s*", re.I)
_URL = re.compile(r"https?://\S+|\bwww\.\S+", re.I)
_HANDLE = re.compile(r"(?<![\w@])@[\w.]+(?:@[\w.-]+)?")
_NON_WORD = re.compile(r"[^\w]+")


def fingerprint_text(text: str) -> str:
    """What two copies of a story share: the text without a repost prefix ("RT @x:"),
    links, accounts, punctuation, case and spacing (a truncation ellipsis goes with the
    punctuation)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _REPOST.sub("", text.strip())
    text = _URL.sub(" ", text)
    text = _HANDLE.sub(" ", text)
    return _NON_WORD.sub(" ", text).strip()


def _digest(normalised: str) -> str:
    return hashlib.blake2b(normalised.encode(), digest_size=16).hexdigest()


def _prefix(normalised: str) -> str:
    return _digest(normalised[:PREFIX_CHARS]) if len(normalised) >= PREFIX_CHARS else ""


@cache
def _permutations() -> tuple[object, object]:
    # Drawn from the fixed seed once, not for every text.
    return MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME).permutations  # type: ignore[no-any-return]


def minhash(text: str) -> MinHash:
    """The MinHash of ``text``'s character :data:`SHINGLE`-grams (``text`` as given by
    :func:`fingerprint_text`)."""
    signature = MinHash(num_perm=NUM_PERM, seed=SEED, permutations=_permutations(), scheme=SCHEME)
    shingles = {text[i : i + SHINGLE] for i in range(max(1, len(text) - SHINGLE + 1))}
    signature.update_batch([s.encode("utf-8") for s in sorted(shingles)])
    return signature


@dataclass(frozen=True)
class _Original:
    mention_id: str
    published: float
    signature: MinHash | None


class _IssueIndex:
    def __init__(self) -> None:
        self.lsh = MinHashLSH(threshold=SIMILARITY, num_perm=NUM_PERM)
        self.exact: dict[str, str] = {}
        self.prefixes: dict[str, str] = {}
        self.originals: OrderedDict[str, _Original] = OrderedDict()
        self.digests: dict[str, tuple[str, str]] = {}

    def add(self, mention_id: str, normalised: str, original: _Original) -> None:
        digest, prefix = _digest(normalised), _prefix(normalised)
        self.originals[mention_id] = original
        self.digests[mention_id] = (digest, prefix)
        self.exact.setdefault(digest, mention_id)
        if prefix:
            self.prefixes.setdefault(prefix, mention_id)
        if original.signature is not None:
            self.lsh.insert(mention_id, original.signature)
        while len(self.originals) > MAX_ORIGINALS:
            old_id, old = self.originals.popitem(last=False)
            old_digest, old_prefix = self.digests.pop(old_id)
            if self.exact.get(old_digest) == old_id:
                del self.exact[old_digest]
            if self.prefixes.get(old_prefix) == old_id:
                del self.prefixes[old_prefix]
            if old.signature is not None:
                self.lsh.remove(old_id)


class DuplicateIndex:
    """The originals of each issue and the copy decisions already taken (thread-safe)."""

    def __init__(self) -> None:
        self._issues: dict[str, _IssueIndex] = {}
        # Recent decisions, so a retried mention gets its first answer back.
        self._decided: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(index.originals) for index in self._issues.values())

    def check(self, issue_id: str, mention_id: str, text: str, published: datetime) -> str:
        """The mention id ``text`` is a copy of, or "" when it is an original (which is then
        added). The same (issue, mention) always gets the same answer."""
        key = (issue_id, mention_id)
        with self._lock:
            if key in self._decided:
                return self._decided[key]
            index = self._issue(issue_id)
            normalised = fingerprint_text(text)
            if len(normalised) < MIN_CHARS:
                self._remember(key, "")
                return ""
            signature = minhash(normalised) if len(normalised) >= MIN_FUZZY_CHARS else None
            original = self._find(index, mention_id, normalised, signature)
            if not original and mention_id not in index.originals:
                entry = _Original(mention_id, published.timestamp(), signature)
                index.add(mention_id, normalised, entry)
            self._remember(key, original)
            return original

    def _issue(self, issue_id: str) -> _IssueIndex:
        index = self._issues.get(issue_id)
        if index is None:
            index = self._issues[issue_id] = _IssueIndex()
        return index

    def _remember(self, key: tuple[str, str], duplicate_of: str) -> None:
        self._decided[key] = duplicate_of
        while len(self._decided) > MAX_DECISIONS:
            self._decided.popitem(last=False)

    def observe(self, issue_id: str, mention_id: str, text: str, published: datetime,
                duplicate_of: str) -> None:  # fmt: skip
        """Replays a decision already taken (a Mention read back from its topic at start-up):
        an original goes back into the index, a copy is only remembered."""
        key = (issue_id, mention_id)
        with self._lock:
            if key in self._decided:
                return
            self._remember(key, duplicate_of)
            index = self._issue(issue_id)
            normalised = fingerprint_text(text)
            if duplicate_of or mention_id in index.originals or len(normalised) < MIN_CHARS:
                return
            signature = minhash(normalised) if len(normalised) >= MIN_FUZZY_CHARS else None
            index.add(
                mention_id, normalised, _Original(mention_id, published.timestamp(), signature)
            )

    @staticmethod
    def _find(
        index: _IssueIndex, mention_id: str, normalised: str, signature: MinHash | None
    ) -> str:
        if mention_id in index.originals:
            return ""  # asked again after its decision was forgotten: still the original
        candidates: list[_Original] = []
        for found in (
            index.exact.get(_digest(normalised)),
            index.prefixes.get(_prefix(normalised)),
        ):
            if found is not None and found in index.originals:
                candidates.append(index.originals[found])
        if signature is not None:
            for mention_id in index.lsh.query(signature):
                original = index.originals.get(str(mention_id))
                if original is None or original.signature is None:
                    continue
                if original.signature.jaccard(signature) >= SIMILARITY:
                    candidates.append(original)
        if not candidates:
            return ""
        return min(candidates, key=lambda o: (o.published, o.mention_id)).mention_id
