"""The boolean query language of tracked issues: grammar, parser and matcher (no I/O).

Grammar (EBNF; operators are upper case, everything else is case-insensitive)::

    query    = or_expr EOF
    or_expr  = and_expr { "OR" and_expr }
    and_expr = not_expr { [ "AND" ] not_expr }        (* juxtaposition is AND *)
    not_expr = "NOT" not_expr | near
    near     = primary [ "NEAR/" digits primary ]     (* both sides words or phrases *)
    primary  = "(" or_expr ")" | field | phrase | word
    field    = ( "lang" | "source" | "author" | "domain" ) ":" ( bare | phrase )
    phrase   = '"' { any but '"' } '"' [ "~" digits ]
    word     = bare, letters or digits with at most a trailing "*"

Precedence, tightest first: NEAR, NOT, AND, OR. ``a b OR c`` is ``(a AND b) OR c``.

Matching runs on normalised text: Unicode NFKC, then casefold, split into words (runs of
letters, digits and ``_``). A query word written without accents also matches the accented
spelling (``traite`` finds ``Traité``); one written with accents needs them (``traité``
does not find ``traite``). ``treat*`` matches any word that starts with ``treat``. A word
that splits into several (``e-mail``, ``l'ONU``) is a phrase.

- ``"w1 w2 ... wn"`` matches the words next to each other, in order.
- ``"w1 ... wn"~k`` matches the words in any order within a span of at most ``n + k``
  words (``k`` other words may sit among them): ``"cap production"~5``.
- ``a NEAR/k b`` matches ``a`` and ``b`` (words or phrases), in either order, with at most
  ``k`` words between them. For two words it is the same as ``"a b"~k``.
- Title and text are matched separately: a phrase or proximity never spans both.
- ``lang:fr`` matches the item's language tag or its primary language (``lang:en`` matches
  ``en-GB``). ``source:`` matches the source kind (``rss``, ``mastodon``...), the source
  as written, or the host (or a parent domain) of the feed or connector URL. ``domain:``
  matches the host of the item's URL or a parent domain (``domain:example.org`` matches
  ``news.example.org``; ``www.`` is ignored).
  ``author:`` matches words (or a phrase, wildcards allowed) in the author's name.

A query must contain at least one word or phrase that is not negated. Errors raise
:class:`QueryError` with the 0-based position in the query string.

Limits, checked on the tokens before anything is parsed (so a hostile query costs one pass
over at most :data:`MAX_QUERY_LENGTH` characters): :data:`MAX_QUERY_LENGTH` characters,
:data:`MAX_QUERY_DEPTH` levels of nesting (parentheses and ``NOT``), :data:`MAX_QUERY_TERMS`
words, phrases and field filters, and a distance of at most :data:`MAX_DISTANCE` words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from legation_listener.domain.sources import source_location

FIELDS = ("author", "domain", "lang", "source")
MAX_QUERY_LENGTH = 4000
"""Most characters in a query."""
MAX_QUERY_DEPTH = 20
"""Most levels of nesting in a query: each open parenthesis and each ``NOT`` in a row
counts one (``NOT (a OR NOT b)`` is 3). The parser and the matcher recurse once per level."""
MAX_QUERY_TERMS = 100
"""Most words, phrases and field filters in a query (each is matched against every item)."""
MAX_DISTANCE = 100
"""Largest ``NEAR/k`` or ``"..."~k`` distance, in words."""
_WORD = re.compile(r"\w+")
_SPECIAL = frozenset('()"')
_FIELD_PREFIX = re.compile(r"^([A-Za-z_]+):(?!//)")


class QueryError(ValueError):
    """A malformed query; ``position`` is the 0-based index in the query where it is."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.message = message
        self.position = position


# ---------------------------------------------------------------------------- normalising


def fold(text: str) -> str:
    """NFKC then casefold: the form every comparison uses."""
    return unicodedata.normalize("NFKC", text).casefold()


def strip_accents(word: str) -> str:
    """``word`` without combining marks ("traité" → "traite"), recomposed."""
    decomposed = unicodedata.normalize("NFD", word)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare)


def words_of(text: str) -> list[str]:
    """The folded words of ``text``."""
    return _WORD.findall(fold(text))


# ---------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Word:
    """One query word: folded, maybe a prefix (``treat*``); unaccented words match the
    accent-stripped form of the text's words."""

    text: str
    prefix: bool = False

    @property
    def accented(self) -> bool:
        return strip_accents(self.text) != self.text


@dataclass(frozen=True)
class Terms:
    """A word or a phrase. ``slop`` is None for exact adjacency, else the ``~k``."""

    words: tuple[Word, ...]
    slop: int | None
    label: str
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Near:
    left: Terms
    right: Terms
    distance: int


@dataclass(frozen=True)
class FieldFilter:
    name: str
    value: str
    words: tuple[Word, ...]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Terms | Near | FieldFilter | Not | And | Or


# ---------------------------------------------------------------------------- lexing


@dataclass(frozen=True)
class _Token:
    kind: str  # LPAREN RPAREN AND OR NOT NEAR FIELD PHRASE WORD EOF
    text: str
    position: int
    number: int | None = None  # NEAR distance, phrase slop
    value: str = ""  # FIELD: the bare value ("" when a phrase follows)


def _describe(token: _Token) -> str:
    if token.kind == "EOF":
        return "end of query"
    return f"{token.text!r}"


def _tokens(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(query)
    while i < n:
        char = query[i]
        if char.isspace():
            i += 1
        elif char == "(":
            tokens.append(_Token("LPAREN", "(", i))
            i += 1
        elif char == ")":
            tokens.append(_Token("RPAREN", ")", i))
            i += 1
        elif char == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QueryError("unterminated phrase (missing closing '\"')", i)
            text = query[i + 1 : end]
            j = end + 1
            slop: int | None = None
            if j < n and query[j] == "~":
                k = j + 1
                while k < n and query[k].isdigit():
                    k += 1
                if k == j + 1:
                    raise QueryError("'~' needs a number of words (\"a b\"~5)", j)
                slop = _bounded(int(query[j + 1 : k]), j + 1)
                j = k
            if j < n and not (query[j].isspace() or query[j] in _SPECIAL):
                raise QueryError(f"unexpected {query[j]!r} after a phrase", j)
            tokens.append(_Token("PHRASE", text, i, number=slop))
            i = j
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in _SPECIAL:
                j += 1
            tokens.append(_bare(query, i, j))
            i = j
    tokens.append(_Token("EOF", "", n))
    return tokens


def _bounded(number: int, position: int) -> int:
    if number > MAX_DISTANCE:
        raise QueryError(f"distance {number} is above the maximum {MAX_DISTANCE}", position)
    return number


def _bare(query: str, start: int, end: int) -> _Token:
    text = query[start:end]
    if text in ("AND", "OR", "NOT"):
        return _Token(text, text, start)
    if text == "NEAR" or text.startswith("NEAR/"):
        digits = text[5:]
        if not digits.isdigit():
            raise QueryError("NEAR needs a distance in words (NEAR/5)", start)
        return _Token("NEAR", text, start, number=_bounded(int(digits), start + 5))
    prefix = _FIELD_PREFIX.match(text)
    if prefix:
        name = prefix.group(1).lower()
        if name not in FIELDS:
            raise QueryError(
                f"unknown field {prefix.group(1)!r} (fields: {', '.join(FIELDS)})", start
            )
        value = text[prefix.end() :]
        if not value and not (end < len(query) and query[end] == '"'):
            raise QueryError(f"{name}: needs a value", end)
        return _Token("FIELD", name, start, value=value)
    return _Token("WORD", text, start)


def check_limits(tokens: Sequence[_Token]) -> None:
    """Raises :class:`QueryError` at the first token that takes the query over
    :data:`MAX_QUERY_DEPTH` or :data:`MAX_QUERY_TERMS` (no recursion: a pass over the
    tokens)."""
    depth = 0
    negations = 0  # NOTs in a row: each one is a level of the parser's recursion
    terms = 0
    for token in tokens:
        if token.kind == "LPAREN":
            depth += 1
        elif token.kind == "RPAREN":
            depth = max(0, depth - 1)
        negations = negations + 1 if token.kind == "NOT" else 0
        if depth + negations > MAX_QUERY_DEPTH:
            raise QueryError(
                f"nests more than the limit of {MAX_QUERY_DEPTH} levels (parentheses and NOT)",
                token.position,
            )
        if token.kind in ("WORD", "PHRASE", "FIELD"):
            terms += 1
            if terms > MAX_QUERY_TERMS:
                raise QueryError(
                    f"has more than the limit of {MAX_QUERY_TERMS} words, phrases and fields",
                    token.position,
                )


# ---------------------------------------------------------------------------- parsing


def _words(text: str, position: int, *, wildcards: bool) -> tuple[Word, ...]:
    """The query words of a bare word or a phrase; only a trailing ``*`` per word. Chunks
    without letters or digits ("-" in a phrase) are skipped."""
    words: list[Word] = []
    offset = 0
    for chunk in text.split():
        found = text.index(chunk, offset)
        at = position + found
        offset = found + len(chunk)
        prefix = chunk.endswith("*")
        body = chunk[:-1] if prefix else chunk
        if "*" in body:
            raise QueryError("only a trailing '*' is supported", at + body.index("*"))
        if "~" in body:
            raise QueryError(
                "'~' is only allowed right after a quoted phrase", at + body.index("~")
            )
        if prefix and not wildcards:
            raise QueryError("wildcards are not allowed here", at + len(body))
        if prefix and not body[-1:].isalnum():
            raise QueryError("'*' must follow a letter or digit", at + len(body))
        parts = words_of(body)
        if not parts:
            continue
        words.extend(Word(part) for part in parts[:-1])
        words.append(Word(parts[-1], prefix=prefix))
    if not words:
        raise QueryError(f"{text.strip() or text!r} has no letters or digits", position)
    return tuple(words)


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _tokens(query)
        check_limits(self.tokens)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def unexpected(self, expected: str = "") -> QueryError:
        token = self.current
        if token.kind == "EOF":
            return QueryError(f"expected {expected or 'more'} but the query ends", token.position)
        return QueryError(f"unexpected {_describe(token)}", token.position)

    def parse(self) -> Node:
        if not self.query.strip():
            raise QueryError("query is empty", 0)
        node = self.or_expr()
        if self.current.kind != "EOF":
            raise self.unexpected()
        return node

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while self.current.kind == "OR":
            self.advance()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self) -> Node:
        children = [self.not_expr()]
        while self.current.kind not in ("OR", "RPAREN", "EOF"):
            if self.current.kind == "AND":
                self.advance()
            children.append(self.not_expr())
        return children[0] if len(children) == 1 else And(tuple(children))

    def not_expr(self) -> Node:
        if self.current.kind == "NOT":
            self.advance()
            return Not(self.not_expr())
        return self.near()

    def near(self) -> Node:
        left = self.primary()
        if self.current.kind != "NEAR":
            return left
        operator = self.advance()
        right = self.primary()
        for side, at in ((left, operator.position), (right, operator.position)):
            if not isinstance(side, Terms):
                raise QueryError("NEAR joins two words or phrases", at)
        if self.current.kind == "NEAR":
            raise QueryError(
                "NEAR cannot be chained; combine two NEARs with AND", self.current.position
            )
        assert isinstance(left, Terms) and isinstance(right, Terms)
        assert operator.number is not None
        return Near(left, right, operator.number)

    def primary(self) -> Node:
        token = self.current
        if token.kind == "LPAREN":
            self.advance()
            if self.current.kind == "RPAREN":
                raise QueryError("empty parentheses", self.current.position)
            node = self.or_expr()
            if self.current.kind != "RPAREN":
                if self.current.kind == "EOF":
                    raise QueryError("unclosed '('", token.position)
                raise self.unexpected("')'")
            self.advance()
            return node
        if token.kind == "WORD":
            self.advance()
            words = _words(token.text, token.position, wildcards=True)
            return Terms(words, None, " ".join(_label(w) for w in words), token.position)
        if token.kind == "PHRASE":
            self.advance()
            if not token.text.strip():
                raise QueryError("empty phrase", token.position)
            words = _words(token.text, token.position + 1, wildcards=True)
            label = " ".join(_label(w) for w in words)
            if token.number is not None:
                label = f'"{label}"~{token.number}'
            return Terms(words, token.number, label, token.position)
        if token.kind == "FIELD":
            self.advance()
            value = token.value
            if not value:  # a phrase follows: lang:"en"
                phrase = self.advance()
                if phrase.number is not None:
                    raise QueryError("'~' is not allowed in a field value", phrase.position)
                value = phrase.text
                if not value.strip():
                    raise QueryError(f"{token.text}: needs a value", phrase.position)
            wildcards = token.text == "author"
            words = _words(value, token.position + len(token.text) + 1, wildcards=wildcards)
            return FieldFilter(token.text, value.strip(), words, token.position)
        raise self.unexpected("a word, a phrase, a field or '('")


def _label(word: Word) -> str:
    return word.text + ("*" if word.prefix else "")


def _has_positive_terms(node: Node, negated: bool = False) -> bool:
    if isinstance(node, Terms | Near):
        return not negated
    if isinstance(node, FieldFilter):
        return False
    if isinstance(node, Not):
        return _has_positive_terms(node.child, not negated)
    return any(_has_positive_terms(child, negated) for child in node.children)


@dataclass(frozen=True)
class Query:
    """A parsed query: ``matches`` tells whether an item matches and which terms it
    contains."""

    text: str
    root: Node

    def matches(self, item: QueryItem) -> list[str]:
        """The query's non-negated words and phrases the item contains, in query order
        (empty: the item does not match)."""
        document = item if isinstance(item, Document) else Document.of(item)
        if not _evaluate(self.root, document):
            return []
        found: list[str] = []
        for terms in _positive_terms(self.root):
            if terms.label not in found and (
                _spans(terms, document.title_words) or _spans(terms, document.text_words)
            ):
                found.append(terms.label)
        return found


@lru_cache(maxsize=1024)
def parse_query(query: str) -> Query:
    """Parses ``query`` or raises :class:`QueryError` with the position of the problem."""
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryError(
            f"is longer than the limit of {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH
        )
    root = _Parser(query).parse()
    if not _has_positive_terms(root):
        raise QueryError("a query needs at least one word or phrase that is not negated", 0)
    return Query(query, root)


# ---------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class QueryItem:
    """What a query looks at in an item."""

    title: str
    text: str
    language: str = ""
    source: str = ""  # the source kind, "rss"
    feed: str = ""
    author: str = ""
    url: str = ""


@dataclass(frozen=True)
class _Section:
    """The words of one field: folded and accent-stripped forms, by position."""

    folded: tuple[str, ...]
    stripped: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> _Section:
        folded = tuple(words_of(text))
        return cls(folded, tuple(strip_accents(word) for word in folded))


@dataclass(frozen=True)
class Document(QueryItem):
    """A :class:`QueryItem` split into words once, for matching many queries."""

    title_words: _Section = field(default=_Section((), ()), compare=False)
    text_words: _Section = field(default=_Section((), ()), compare=False)
    author_words: _Section = field(default=_Section((), ()), compare=False)

    @classmethod
    def of(cls, item: QueryItem) -> Document:
        return cls(
            title=item.title,
            text=item.text,
            language=item.language,
            source=item.source,
            feed=item.feed,
            author=item.author,
            url=item.url,
            title_words=_Section.of(item.title),
            text_words=_Section.of(item.text),
            author_words=_Section.of(item.author),
        )


def _word_matches(word: Word, folded: str, stripped: str) -> bool:
    if word.accented:
        candidate, wanted = folded, word.text
    else:
        candidate, wanted = stripped, word.text
    return candidate.startswith(wanted) if word.prefix else candidate == wanted


def _positions(word: Word, section: _Section) -> list[int]:
    return [
        i
        for i, (folded, stripped) in enumerate(zip(section.folded, section.stripped, strict=True))
        if _word_matches(word, folded, stripped)
    ]


def _spans_in(terms: Terms, section: _Section) -> list[tuple[int, int]]:
    """(first, last) word positions of each occurrence of ``terms`` in ``section``."""
    hits = [_positions(word, section) for word in terms.words]
    if any(not positions for positions in hits):
        return []
    if len(terms.words) == 1:
        return [(p, p) for p in hits[0]]
    if terms.slop is None:
        rest = [set(positions) for positions in hits[1:]]
        return [
            (start, start + len(rest))
            for start in hits[0]
            if all(start + offset + 1 in positions for offset, positions in enumerate(rest))
        ]
    return _windows(hits, len(terms.words) + terms.slop)


def _windows(hits: Sequence[Sequence[int]], width: int) -> list[tuple[int, int]]:
    """Smallest windows of at most ``width`` words holding an occurrence of every word
    (each word at its own position)."""
    events = sorted((p, i) for i, positions in enumerate(hits) for p in positions)
    spans: list[tuple[int, int]] = []
    for start_index, (start, _) in enumerate(events):
        chosen: dict[int, int] = {}
        for position, word_index in events[start_index:]:
            if position - start + 1 > width:
                break
            if word_index not in chosen and position not in chosen.values():
                chosen[word_index] = position
            if len(chosen) == len(hits):
                spans.append((start, position))
                break
    return spans


def _spans(terms: Terms, section: _Section) -> list[tuple[int, int]]:
    return _spans_in(terms, section)


def _near(node: Near, section: _Section) -> bool:
    left, right = _spans(node.left, section), _spans(node.right, section)
    for a_start, a_end in left:
        for b_start, b_end in right:
            gap = max(b_start - a_end, a_start - b_end) - 1
            if gap <= node.distance:
                return True
    return False


def _host(url: str) -> str:
    try:
        host = (urlsplit(url if "://" in url else f"//{url}").hostname or "").casefold()
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _domain_matches(wanted: str, host: str) -> bool:
    wanted = _host(wanted) or fold(wanted)
    return bool(host) and (host == wanted or host.endswith("." + wanted))


def _field_matches(node: FieldFilter, item: Document) -> bool:
    value = fold(node.value)
    if node.name == "lang":
        language = fold(item.language)
        return language == value or language.split("-", 1)[0] == value
    if node.name == "domain":
        return _domain_matches(value, _host(item.url))
    if node.name == "source":
        return (
            value == fold(item.source)
            or value == fold(item.feed)
            or _domain_matches(value, _host(source_location(item.feed)))
        )
    # author
    return bool(_spans_in(Terms(node.words, None, "", 0), item.author_words))


def _evaluate(node: Node, item: Document) -> bool:
    if isinstance(node, Terms):
        return bool(_spans(node, item.title_words) or _spans(node, item.text_words))
    if isinstance(node, Near):
        return _near(node, item.title_words) or _near(node, item.text_words)
    if isinstance(node, FieldFilter):
        return _field_matches(node, item)
    if isinstance(node, Not):
        return not _evaluate(node.child, item)
    if isinstance(node, And):
        return all(_evaluate(child, item) for child in node.children)
    return any(_evaluate(child, item) for child in node.children)


def _positive_terms(node: Node, negated: bool = False) -> Iterable[Terms]:
    if isinstance(node, Terms):
        if not negated:
            yield node
    elif isinstance(node, Near):
        if not negated:
            yield node.left
            yield node.right
    elif isinstance(node, Not):
        yield from _positive_terms(node.child, not negated)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from _positive_terms(child, negated)
