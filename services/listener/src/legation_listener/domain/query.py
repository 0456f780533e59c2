"""The boolean query language of tracked issues: grammar, parser and matcher (no I/O).

Grammar (EBNF; operators are upper case, everything else is case-insensitive)::

    query    = or_expr EOF
    or_expr  = and_expr { "OR" and_expr }
    and_expr = not_expr { [ "AND" ] not_expr }        (* juxtaposition is AND *)
    not_expr = ( "NOT" | "-" ) not_expr | near       (* "-" written against its term *)
    near     = primary [ proximity primary ]          (* sides: see below *)
    proximity = "NEAR/" digits [ "f" ] | "ONEAR/" digits
    primary  = "(" or_expr ")" [ "~" digits ] | "title:" primary | field
             | "{" ( bare | phrase ) "}" | hashtag | mention | link | phrase | word
    field    = ( "lang" | "language" | "source" | "author" | "domain" | "site" | "url" )
               ":" ( bare | phrase )
    phrase   = '"' { any but '"' } '"' [ "~" digits ]
    hashtag  = "#" letters, digits or "_" [ "*" ]
    mention  = "@" user name [ "@" instance ]
    link     = ( "http://" | "https://" ) ...
    word     = bare: letters or digits, "?" for one character, at most a trailing "*"

Precedence, tightest first: NEAR, NOT, AND, OR. ``a b OR c`` is ``(a AND b) OR c``.

Matching runs on normalised text: Unicode NFKC, then casefold, split into words (runs of
letters, digits and ``_``). A query word written without accents also matches the accented
spelling (``traite`` finds ``Traité``); one written with accents needs them (``traité``
does not find ``traite``). ``treat*`` matches any word that starts with ``treat``;
``customi?e`` any word with one character, whatever it is, in place of the ``?``. A word
that splits into several (``e-mail``, ``l'ONU``) is a phrase. ``{UN}`` is case-sensitive:
the word as written, capitals included (accents as for other words).

- ``"w1 w2 ... wn"`` matches the words next to each other, in order.
- ``"w1 ... wn"~k`` matches the words in any order within a span of at most ``n + k``
  words (``k`` other words may sit among them): ``"cap production"~5``.
- ``a NEAR/k b`` matches ``a`` and ``b``, in either order, with at most ``k`` words between
  them; ``a NEAR/kf b`` (or ``a ONEAR/k b``) only with ``a`` first. A side is a word, a
  phrase, a group of them joined by OR, or another (parenthesised) proximity:
  ``(plastic OR plastics) NEAR/5 (treaty OR accord)``. For two words ``a NEAR/k b`` is
  ``"a b"~k``.
- ``(a b c)~k`` (parts joined by AND) matches an occurrence of every part in a window where
  at most ``k`` words belong to none of them; for words it is ``"a b c"~k``.
- Title and text are matched separately: a phrase or proximity never spans both.
  ``title:`` looks at the title only (a word, a phrase or a parenthesised group).
- ``#tag`` matches the hashtag ``#tag`` (not the word ``tag``); ``@alice`` the mention of
  that account (``@alice`` or ``@alice@any.instance``; ``@alice@mastodon.social`` only that
  one); a link ``https://example.org/news`` that page or a page under it written in the
  text (scheme and ``www.`` ignored). They are the hashtags, accounts and links the
  enrichment finds (:func:`legation_listener.domain.enrichment.hashtags`, ...).
- ``lang:fr`` (or ``language:fr``) matches the item's language tag or its primary language
  (``lang:en`` matches ``en-GB``). ``source:`` matches the source kind (``rss``,
  ``mastodon``...), the source as written, or the host (or a parent domain) of the feed or
  connector URL. ``domain:`` (or ``site:``) matches the host of the item's URL or a parent
  domain (``domain:example.org`` matches ``news.example.org``; ``www.`` is ignored).
  ``url:`` matches the item's URL or a URL under it (``url:example.org/news`` matches
  ``https://www.example.org/news/1``; the host exactly, ``www.`` ignored). ``author:``
  matches words (or a phrase, wildcards allowed) in the author's name.

Every operator of other listening tools that this language does not honour is refused with
its position, never read as a word (:data:`REFUSED_FIELDS`, :data:`RESERVED_CHARACTERS`,
and ``legation_listener.domain.query_conformance`` for the whole table).

A query must contain at least one word, phrase, hashtag, mention or link that is not
negated. Errors raise :class:`QueryError` with the 0-based position in the query string.

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
from functools import cached_property, lru_cache
from urllib.parse import urlsplit

from legation_listener.domain.enrichment import hashtags as hashtags_in
from legation_listener.domain.enrichment import links as links_in
from legation_listener.domain.enrichment import mentioned_accounts
from legation_listener.domain.sources import source_location

FIELDS = ("author", "domain", "lang", "language", "site", "source", "title", "url")
"""The fields a query may filter on."""
LOCATION = "items carry no location, neither the author's nor the post's"
REFUSED_FIELDS: dict[str, str] = {
    "links": (
        "Brandwatch's links: also finds shortened links, which the listener does not expand,"
        " and the links of an item's HTML are not kept; write the link itself"
        " (https://example.org/page) to match links written in the text"
    ),
    "raw": (
        "Brandwatch's raw: matches symbols such as '+' exactly, but text is compared as"
        " normalised words without them; write {Term} for a case-sensitive word"
    ),
    "city": LOCATION,
    "county": LOCATION,
    "state": LOCATION,
    "country": LOCATION,
    "continent": LOCATION,
    "authorgender": "items carry no author gender",
    "ingress": "items carry no lead paragraph apart from their text",
}
"""Fields other listening tools document that the listener cannot honour, with the reason
(names in lower case; a query naming one is refused at the field)."""
RESERVED_CHARACTERS: dict[str, str] = {
    "^": (
        "'^' (a hit-sentence preference in Meltwater) is not supported: it does not change"
        " what matches, remove it"
    ),
    "<": ("'<' is not supported: notes between <<< and >>> (Brandwatch) cannot be kept in a query"),
    ">": ("'>' is not supported: notes between <<< and >>> (Brandwatch) cannot be kept in a query"),
    "[": "'[' is not supported: ranges such as [1000 TO *] are not part of the language",
    "]": "']' is not supported: ranges such as [1000 TO *] are not part of the language",
    "{": "'{' must open a term: {Term} matches a word case-sensitively",
    "}": "unexpected '}'",
}
"""Characters that are operators in other tools and never part of a word here: refused
wherever they appear in a word or a phrase."""
LEADING_MARKS: dict[str, str] = {
    "!": "'!' is not supported: a case-sensitive term is written {Term}",
    "+": "'+' is not supported: every term is required unless joined by OR",
    "$": "'$' (a cashtag) is not supported",  # before a letter only
}
"""Marks that other tools put before a term; refused before a letter, digit or quote (``$``
before a letter)."""
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
_QUERY_WORD = re.compile(r"[\w?]+")
_SPECIAL = frozenset('()"')
_FIELD_PREFIX = re.compile(r"^([A-Za-z_]+):(?!//)")
_HASHTAG = re.compile(r"#(\w*[^\W\d_][\w?]*\*?)\Z")
_HANDLE = re.compile(r"@([A-Za-z0-9_](?:[\w.-]*\w)?(?:@[\w-]+(?:\.[\w-]+)+)?)\Z")
_LINK_PREFIXES = ("http://", "https://")
_LOWER_PROXIMITY = re.compile(r"(?i)o?near/\d+f?\Z")
_TERM_KINDS = frozenset(("WORD", "PHRASE", "FIELD", "CASE", "HASHTAG", "ACCOUNT", "LINK"))


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
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFD", word)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare)


def words_of(text: str) -> list[str]:
    """The folded words of ``text``."""
    return _WORD.findall(fold(text))


def link_key(url: str) -> str:
    """``url`` as links are compared: host in lower case without ``www.``, then port, path
    without a trailing ``/``, query and fragment; no scheme ("" when it has no host)."""
    try:
        parts = urlsplit(url.strip() if "://" in url else f"//{url.strip()}")
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").casefold().removeprefix("www.")
    if not host:
        return ""
    key = host + (f":{port}" if port else "") + parts.path.rstrip("/")
    if parts.query:
        key += "?" + parts.query
    if parts.fragment:
        key += "#" + parts.fragment
    return key


def _under(wanted: str, key: str) -> bool:
    """Whether the link ``key`` is the link ``wanted`` or a page under it."""
    return key == wanted or (key.startswith(wanted) and key[len(wanted)] in "/?#")


# ---------------------------------------------------------------------------- the tree


def _pattern(text: str, prefix: bool) -> re.Pattern[str]:
    body = "".join("." if char == "?" else re.escape(char) for char in text)
    return re.compile(body + (".*" if prefix else ""), re.DOTALL)


@dataclass(frozen=True)
class Word:
    """One query word: folded, maybe a prefix (``treat*``), maybe with ``?`` standing for
    one character; unaccented words match the accent-stripped form of the text's words.
    ``case`` is the word as written (NFKC, not folded) when it is case-sensitive."""

    text: str
    prefix: bool = False
    case: str = ""
    accented: bool = field(init=False, compare=False)
    pattern: re.Pattern[str] | None = field(init=False, compare=False)
    case_pattern: re.Pattern[str] | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accented", strip_accents(self.text) != self.text)
        wildcard = _pattern(self.text, self.prefix) if "?" in self.text else None
        object.__setattr__(self, "pattern", wildcard)
        case = _pattern(self.case, self.prefix) if self.case else None
        object.__setattr__(self, "case_pattern", case)


@dataclass(frozen=True)
class Terms:
    """A word or a phrase. ``slop`` is None for exact adjacency, else the ``~k``."""

    words: tuple[Word, ...]
    slop: int | None
    label: str
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Entity:
    """A hashtag (``kind`` "hashtag", ``word`` its folded tag), a mentioned account
    ("account", ``value`` folded with its "@") or a link ("link", ``value`` its
    :func:`link_key`)."""

    kind: str
    value: str
    label: str
    word: Word | None = None
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Near:
    """``left`` and ``right`` (words, phrases, OR-groups of them, proximities) with at most
    ``distance`` words between them; ``ordered``: ``left`` first."""

    left: Node
    right: Node
    distance: int
    ordered: bool = False
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Within:
    """``(a b c)~k``: an occurrence of every part in a window where at most ``distance``
    words belong to none of them."""

    parts: tuple[Node, ...]
    distance: int
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class InTitle:
    """``title:``: ``child`` matched against the title only."""

    child: Node
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class FieldFilter:
    """A filter on an item's metadata (``lang:``, ``source:``, ``author:``, ``domain:``,
    ``site:``, ``url:``); ``key`` is the value in the form it is compared in."""

    name: str
    value: str
    words: tuple[Word, ...]
    position: int = field(default=0, compare=False)
    key: str = field(default="", compare=False)


@dataclass(frozen=True)
class Not:
    child: Node
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]
    position: int = field(default=0, compare=False)


Node = Terms | Entity | Near | Within | InTitle | FieldFilter | Not | And | Or


# ---------------------------------------------------------------------------- lexing


@dataclass(frozen=True)
class _Token:
    kind: str  # LPAREN RPAREN TILDE AND OR NOT NEAR TITLE FIELD PHRASE CASE HASHTAG ...
    text: str
    position: int
    number: int | None = None  # NEAR distance, phrase slop, group "~"
    value: str = ""  # FIELD: the bare value ("" when a phrase follows); CASE: "phrase"
    ordered: bool = False  # NEAR/kf, ONEAR/k


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
            if i < n and query[i] == "~":
                slop, after = _tilde(query, i, "(a b)~5")
                tokens.append(_Token("TILDE", "~", i, number=slop))
                i = after
            elif i < n and query[i] == "^":
                raise QueryError(RESERVED_CHARACTERS["^"], i)
        elif char == '"':
            token, i = _phrase(query, i)
            tokens.append(token)
        elif char == "{":
            token, i = _case(query, i)
            tokens.append(token)
        elif char == "-" and i + 1 < n and not query[i + 1].isspace() and query[i + 1] != ")":
            tokens.append(_Token("NOT", "-", i))
            i += 1
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in _SPECIAL:
                j += 1
            token, i = _bare(query, i, j)
            tokens.append(token)
    tokens.append(_Token("EOF", "", n))
    return tokens


def _tilde(query: str, at: int, example: str) -> tuple[int, int]:
    """The ``~k`` at ``at``: k and the index after it."""
    k = at + 1
    while k < len(query) and query[k] in _ASCII_DIGITS:
        k += 1
    if k == at + 1:
        raise QueryError(f"'~' needs a number of words ({example})", at)
    return _distance(query[at + 1 : k], at + 1), k


def _phrase(query: str, i: int) -> tuple[_Token, int]:
    n = len(query)
    end = query.find('"', i + 1)
    if end < 0:
        raise QueryError("unterminated phrase (missing closing '\"')", i)
    text = query[i + 1 : end]
    j = end + 1
    slop: int | None = None
    if j < n and query[j] == "~":
        slop, j = _tilde(query, j, '"a b"~5')
    if j < n and query[j] == "^":
        raise QueryError(RESERVED_CHARACTERS["^"], j)
    if j < n and not (query[j].isspace() or query[j] in _SPECIAL):
        raise QueryError(f"unexpected {query[j]!r} after a phrase", j)
    return _Token("PHRASE", text, i, number=slop), j


_BRACES = 'braces hold one word or one quoted phrase: {Term} or {"A Phrase"}'


def _case(query: str, i: int) -> tuple[_Token, int]:
    """``{Term}`` or ``{"A Phrase"}`` at ``i``: a CASE token (value "phrase" for a phrase)."""
    end = query.find("}", i + 1)
    if end < 0:
        raise QueryError("unclosed '{'", i)
    inner = query[i + 1 : end]
    if inner.startswith('"'):
        if len(inner) < 2 or not inner.endswith('"') or '"' in inner[1:-1]:
            raise QueryError(_BRACES, i)
        text, kind = inner[1:-1], "phrase"
    else:
        if not inner or any(c.isspace() or c in '()"{' for c in inner):
            raise QueryError(_BRACES, i)
        if inner[0] in "#@" or inner.lower().startswith(_LINK_PREFIXES):
            raise QueryError(_BRACES + " (hashtags, mentions and links are never cased)", i)
        text, kind = inner, ""
    j = end + 1
    if j < len(query) and not (query[j].isspace() or query[j] in _SPECIAL):
        raise QueryError(f"unexpected {query[j]!r} after '}}'", j)
    return _Token("CASE", text, i, value=kind), j


# ASCII only: str.isdigit() also takes "²" and other digits int() refuses (a ValueError).
_ASCII_DIGITS = frozenset("0123456789")


def _distance(digits: str, position: int) -> int:
    """A distance written as ASCII ``digits``, at most MAX_DISTANCE; long runs of digits
    are refused before int() sees them (it refuses more than 4,300 with a ValueError)."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(MAX_DISTANCE)) or int(significant) > MAX_DISTANCE:
        shown = significant if len(significant) <= 12 else f"{significant[:12]}…"
        raise QueryError(f"distance {shown} is above the maximum {MAX_DISTANCE}", position)
    return int(significant)


def _proximity(text: str, start: int) -> _Token:
    """``NEAR/k``, ``NEAR/kf`` or ``ONEAR/k`` (``text`` starts with NEAR or ONEAR)."""
    name = "ONEAR" if text.startswith("O") else "NEAR"
    digits = text[len(name) + 1 :] if text.startswith(name + "/") else ""
    ordered = name == "ONEAR"
    if name == "NEAR" and digits.endswith("f"):
        digits, ordered = digits[:-1], True
    if not digits or not set(digits) <= _ASCII_DIGITS:
        raise QueryError(
            f"{name} needs a distance in words ({name}/5): the tools differ on the distance"
            f" of a bare {name}",
            start,
        )
    distance = _distance(digits, start + len(name) + 1)
    return _Token("NEAR", text, start, number=distance, ordered=ordered)


def _bare(query: str, start: int, end: int) -> tuple[_Token, int]:
    """The token of the bare text ``query[start:end]`` and where lexing goes on."""
    text = query[start:end]
    if text in ("AND", "OR", "NOT"):
        return _Token(text, text, start), end
    if text in ("NEAR", "ONEAR") or text.startswith(("NEAR/", "ONEAR/")):
        return _proximity(text, start), end
    if _LOWER_PROXIMITY.match(text):
        raise QueryError("operators are upper case: NEAR/5, NEAR/5f, ONEAR/5", start)
    if text[0] == "#":
        return _Token("HASHTAG", text, start), end
    if text[0] == "@":
        return _Token("ACCOUNT", text, start), end
    if text.lower().startswith(_LINK_PREFIXES):
        return _Token("LINK", text, start), end
    prefix = _FIELD_PREFIX.match(text)
    if prefix:
        written = prefix.group(1)
        name = written.lower()
        if name in REFUSED_FIELDS:
            raise QueryError(f"{written}: is not supported ({REFUSED_FIELDS[name]})", start)
        if name not in FIELDS:
            raise QueryError(f"unknown field {written!r} (fields: {', '.join(FIELDS)})", start)
        value = text[prefix.end() :]
        after = start + prefix.end()
        if name == "title":  # the term after the colon is lexed on its own
            if after >= len(query) or query[after].isspace():
                raise QueryError("title: needs a value", after)
            return _Token("TITLE", "title", start), after
        if not value and not (end < len(query) and query[end] == '"'):
            raise QueryError(f"{name}: needs a value", end)
        return _Token("FIELD", name, start, value=value), end
    return _Token("WORD", text, start), end


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
        if token.kind in _TERM_KINDS:
            terms += 1
            if terms > MAX_QUERY_TERMS:
                raise QueryError(
                    f"has more than the limit of {MAX_QUERY_TERMS} words, phrases and fields",
                    token.position,
                )


# ---------------------------------------------------------------------------- parsing


def _check_chunk(chunk: str, at: int, *, in_phrase: bool) -> None:
    """Refuses, at their position, the characters and marks of other tools' operators in
    one whitespace-separated chunk of a word or a phrase."""
    for index, char in enumerate(chunk):
        if char in RESERVED_CHARACTERS:
            raise QueryError(RESERVED_CHARACTERS[char], at + index)
    follows = chunk[1:2]
    marked = follows and (follows.isalpha() if chunk[0] == "$" else follows.isalnum())
    if chunk[0] in LEADING_MARKS and (marked or follows in ("_", '"')):
        raise QueryError(LEADING_MARKS[chunk[0]], at)  # "$5" is a price, "$TWTR" a cashtag
    if in_phrase:
        if chunk[0] in "#@" and follows and (follows.isalnum() or follows == "_"):
            what = "a hashtag" if chunk[0] == "#" else "a mention"
            raise QueryError(
                f"{what} inside a phrase: a phrase matches words; write it outside the quotes",
                at,
            )
        if chunk.lower().startswith(_LINK_PREFIXES):
            raise QueryError(
                "a link inside a phrase: a phrase matches words; write the link outside the quotes",
                at,
            )


def _words(
    text: str, position: int, *, wildcards: bool, in_phrase: bool = False, case: bool = False
) -> tuple[Word, ...]:
    """The query words of a bare word or a phrase; only a trailing ``*`` per word, ``?``
    anywhere but first. Chunks without letters or digits ("-" in a phrase) are skipped."""
    words: list[Word] = []
    offset = 0
    for chunk in text.split():
        found = text.index(chunk, offset)
        at = position + found
        offset = found + len(chunk)
        _check_chunk(chunk, at, in_phrase=in_phrase)
        prefix = chunk.endswith("*")
        body = chunk[:-1] if prefix else chunk
        if "*" in body:
            raise QueryError("only a trailing '*' is supported", at + body.index("*"))
        if "~" in body:
            raise QueryError(
                "'~' is only allowed right after a quoted phrase or a parenthesised group",
                at + body.index("~"),
            )
        if prefix and not wildcards:
            raise QueryError("wildcards are not allowed here", at + len(body))
        if prefix and not (body[-1:].isalnum() or body[-1:] in ("_", "?")):
            raise QueryError("'*' must follow a letter or digit", at + len(body))
        pieces = list(_QUERY_WORD.finditer(body))
        for index, piece in enumerate(pieces):
            written = piece.group()
            if written.startswith("?"):
                raise QueryError(
                    "'?' stands for one character inside a word and cannot start one",
                    at + piece.start(),
                )
            if "?" in written and not wildcards:
                raise QueryError("wildcards are not allowed here", at + piece.start())
            raw = unicodedata.normalize("NFKC", written)
            parts = _QUERY_WORD.findall(raw.casefold())
            if case and len(parts) != 1:
                raise QueryError(f"{written!r} cannot be matched case-sensitively", at)
            for k, part in enumerate(parts):
                last = index == len(pieces) - 1 and k == len(parts) - 1
                words.append(Word(part, prefix=prefix and last, case=raw if case else ""))
    if not words:
        raise QueryError(f"{text.strip() or text!r} has no letters or digits", position)
    return tuple(words)


def _entity(token: _Token) -> Entity:
    """The hashtag, mention or link of ``token``."""
    text = token.text
    if token.kind == "HASHTAG":
        if not _HASHTAG.match(text) or text[1:].startswith("?"):
            raise QueryError(
                f"{text!r} is not a hashtag: '#' then letters, digits or '_' (one letter at"
                " least), with '?' or a trailing '*' as wildcards",
                token.position,
            )
        prefix = text.endswith("*")
        word = Word(fold(text[1 : -1 if prefix else None]), prefix=prefix)
        return Entity("hashtag", word.text, "#" + _label(word), word, token.position)
    if token.kind == "ACCOUNT":
        if not _HANDLE.match(text):
            raise QueryError(
                f"{text!r} is not a mention: '@' then a user name (@alice, @alice@mastodon.social)",
                token.position,
            )
        return Entity("account", fold(text), fold(text), None, token.position)
    key = link_key(text)
    if not key:
        raise QueryError(f"{text!r} is not a link (it has no host)", token.position)
    return Entity("link", key, text, None, token.position)


def _kind_of(node: Node) -> str:
    if isinstance(node, And):
        return "AND"
    if isinstance(node, Not):
        return "NOT"
    if isinstance(node, FieldFilter):
        return f"{node.name}:"
    if isinstance(node, InTitle):
        return "title:"
    if isinstance(node, Entity):
        return {"hashtag": "a hashtag", "account": "a mention"}.get(node.kind, "a link")
    return "this"


def _check_side(node: Node, operator: str) -> None:
    """Raises unless ``node`` can be a side of a proximity: words, phrases, OR-groups of
    them, proximities."""
    if isinstance(node, Terms | Near | Within):
        return
    if isinstance(node, Or):
        for child in node.children:
            _check_side(child, operator)
        return
    raise QueryError(
        f"{operator} joins words, phrases and groups of them joined by OR, not {_kind_of(node)}",
        node.position,
    )


def _check_title(node: Node) -> None:
    """Raises unless ``node`` matches text only (what ``title:`` can restrict)."""
    if isinstance(node, Terms | Near | Within):
        return
    if isinstance(node, Not):
        _check_title(node.child)
        return
    if isinstance(node, And | Or):
        for child in node.children:
            _check_title(child)
        return
    raise QueryError(
        f"title: holds words, phrases and groups of them, not {_kind_of(node)}", node.position
    )


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
        if token.kind == "TILDE":
            return QueryError("'~' after a group needs its parts joined by AND", token.position)
        return QueryError(f"unexpected {_describe(token)}", token.position)

    def parse(self) -> Node:
        if not self.query.strip():
            raise QueryError("query is empty", 0)
        node = self.or_expr()
        if self.current.kind != "EOF":
            raise self.unexpected()
        return node

    def or_expr(self) -> Node:
        start = self.current.position
        children = [self.and_expr()]
        while self.current.kind == "OR":
            self.advance()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children), start)

    def and_expr(self) -> Node:
        children = [self.not_expr()]
        position = 0
        while self.current.kind not in ("OR", "RPAREN", "EOF"):
            if self.current.kind == "AND":
                position = position or self.current.position
                self.advance()
            position = position or self.current.position
            children.append(self.not_expr())
        return children[0] if len(children) == 1 else And(tuple(children), position)

    def not_expr(self) -> Node:
        if self.current.kind == "NOT":
            token = self.advance()
            return Not(self.not_expr(), token.position)
        return self.near()

    def near(self) -> Node:
        left = self.primary()
        if self.current.kind != "NEAR":
            return left
        operator = self.advance()
        right = self.primary()
        name = "ONEAR" if operator.text.startswith("O") else "NEAR"
        _check_side(left, name)
        _check_side(right, name)
        if self.current.kind == "NEAR":
            raise QueryError(
                "NEAR cannot be chained; combine two NEARs with AND or put one in parentheses",
                self.current.position,
            )
        assert operator.number is not None
        return Near(left, right, operator.number, operator.ordered, operator.position)

    def group(self) -> Node:
        token = self.advance()
        if self.current.kind == "RPAREN":
            raise QueryError("empty parentheses", self.current.position)
        node = self.or_expr()
        if self.current.kind != "RPAREN":
            if self.current.kind == "EOF":
                raise QueryError("unclosed '('", token.position)
            raise self.unexpected("')'")
        self.advance()
        if self.current.kind != "TILDE":
            return node
        tilde = self.advance()
        if not isinstance(node, And):
            raise QueryError(
                "'~' after a group needs two or more parts joined by AND: (a b)~5",
                tilde.position,
            )
        for part in node.children:
            _check_side(part, "'~'")
        assert tilde.number is not None
        return Within(node.children, tilde.number, tilde.position)

    def primary(self) -> Node:
        token = self.current
        if token.kind == "LPAREN":
            return self.group()
        if token.kind == "WORD":
            self.advance()
            words = _words(token.text, token.position, wildcards=True)
            return Terms(words, None, " ".join(_label(w) for w in words), token.position)
        if token.kind in ("PHRASE", "CASE"):
            self.advance()
            case = token.kind == "CASE"
            if not token.text.strip():
                raise QueryError("empty phrase", token.position)
            start = token.position + (2 if case and token.value else 1)
            words = _words(
                token.text,
                start,
                wildcards=True,
                in_phrase=token.kind == "PHRASE" or bool(token.value),
                case=case,
            )
            label = " ".join(_label(w) for w in words)
            if case:
                label = "{" + (f'"{token.text}"' if token.value else token.text) + "}"
            elif token.number is not None:
                label = f'"{label}"~{token.number}'
            return Terms(words, token.number, label, token.position)
        if token.kind in ("HASHTAG", "ACCOUNT", "LINK"):
            self.advance()
            return _entity(token)
        if token.kind == "TITLE":
            self.advance()
            child = self.primary()
            _check_title(child)
            return InTitle(child, token.position)
        if token.kind == "FIELD":
            self.advance()
            return self.field(token)
        raise self.unexpected("a word, a phrase, a field or '('")

    def field(self, token: _Token) -> FieldFilter:
        name = token.text
        value = token.value
        value_at = token.position + len(name) + 1
        if not value:  # a phrase follows: lang:"en"
            phrase = self.advance()
            if phrase.number is not None:
                raise QueryError("'~' is not allowed in a field value", phrase.position)
            value = phrase.text
            value_at = phrase.position + 1
            if not value.strip():
                raise QueryError(f"{name}: needs a value", phrase.position)
        words: tuple[Word, ...] = ()
        if name == "author":
            words = _words(value, value_at, wildcards=True)
        else:
            if "*" in value:
                raise QueryError("wildcards are not allowed here", value_at + value.index("*"))
            if not words_of(value):
                raise QueryError(f"{value.strip() or value!r} has no letters or digits", value_at)
        key = _field_key(name, value, value_at)
        return FieldFilter(name, value.strip(), words, token.position, key)


def _field_key(name: str, value: str, position: int) -> str:
    """``value`` in the form the field compares it in; refuses a site with a path and a
    URL without a host."""
    value = value.strip()
    if name in ("domain", "site"):
        key = link_key(value)
        if "/" in key or "?" in key or "#" in key:
            raise QueryError(
                f"{name}: takes a site (example.org); write url:{key} for a part of a site",
                position,
            )
        return key.split(":")[0] or fold(value)
    if name == "url":
        key = link_key(value)
        if not key:
            raise QueryError("url: needs a host (url:example.org/news)", position)
        return key
    return fold(value)


def _label(word: Word) -> str:
    return word.text + ("*" if word.prefix else "")


def _has_positive_terms(node: Node, negated: bool = False) -> bool:
    if isinstance(node, Terms | Near | Within | Entity):
        return not negated
    if isinstance(node, FieldFilter):
        return False
    if isinstance(node, InTitle):
        return _has_positive_terms(node.child, negated)
    if isinstance(node, Not):
        return _has_positive_terms(node.child, not negated)
    return any(_has_positive_terms(child, negated) for child in node.children)


@dataclass(frozen=True)
class Query:
    """A parsed query: ``matches`` tells whether an item matches and which terms it
    contains."""

    text: str
    root: Node

    @cached_property
    def _leaves(self) -> tuple[tuple[Terms | Entity, bool], ...]:
        """The non-negated words, phrases, hashtags, mentions and links, in query order,
        with whether they look at the title only."""
        return tuple(_positive_leaves(self.root))

    def matches(self, item: QueryItem) -> list[str]:
        """The query's non-negated words, phrases, hashtags, mentions and links the item
        contains, in query order (empty: the item does not match)."""
        document = item if isinstance(item, Document) else Document.of(item)
        matcher = _Matcher(document)
        if not matcher.evaluate(self.root, document.sections):
            return []
        found: list[str] = []
        for leaf, title_only in self._leaves:
            label = f"title:{leaf.label}" if title_only else leaf.label
            if label in found:
                continue
            if isinstance(leaf, Entity):
                hit = _entity_matches(leaf, document)
            else:
                sections = (document.title_words,) if title_only else document.sections
                hit = any(matcher.spans(leaf, section) for section in sections)
            if hit:
                found.append(label)
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
        raise QueryError(
            "a query needs at least one word or phrase that is not negated (or a hashtag,"
            " a mention, a link)",
            0,
        )
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
    """The words of one field: folded and accent-stripped forms, by position; ``raw`` (the
    words as written, NFKC, for case-sensitive terms) is worked out when first asked."""

    folded: tuple[str, ...]
    stripped: tuple[str, ...]
    source: str = field(default="", compare=False)

    @classmethod
    def of(cls, text: str) -> _Section:
        folded_text = fold(text)
        folded = tuple(_WORD.findall(folded_text))
        if folded_text.isascii():
            return cls(folded, folded, text)
        return cls(folded, tuple(strip_accents(word) for word in folded), text)

    @cached_property
    def raw(self) -> tuple[str, ...]:
        """The words as written, aligned with ``folded`` (a word whose case folding splits
        it, "İ", stands at each of its folded positions)."""
        raw: list[str] = []
        for word in _WORD.findall(unicodedata.normalize("NFKC", self.source)):
            raw.extend([word] * len(_WORD.findall(word.casefold())))
        return tuple(raw)


_NO_WORDS = _Section((), ())


@dataclass(frozen=True)
class Document(QueryItem):
    """A :class:`QueryItem` split into words once, for matching many queries; the author's
    words, hashtags, mentions, links and URL parts are worked out when a query first needs
    them."""

    title_words: _Section = field(default=_NO_WORDS, compare=False)
    text_words: _Section = field(default=_NO_WORDS, compare=False)

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
        )

    @property
    def sections(self) -> tuple[_Section, _Section]:
        """Title and text, matched separately."""
        return (self.title_words, self.text_words)

    @cached_property
    def author_words(self) -> _Section:
        return _Section.of(self.author)

    @cached_property
    def hashtags(self) -> tuple[tuple[str, str], ...]:
        """The hashtags of title and text, folded, each with its accent-stripped form."""
        tags = dict.fromkeys(fold(tag) for tag in hashtags_in(f"{self.title}\n{self.text}"))
        return tuple((tag, strip_accents(tag)) for tag in tags)

    @cached_property
    def accounts(self) -> frozenset[str]:
        """The accounts title and text mention, folded, with their "@"."""
        return frozenset(fold(a) for a in mentioned_accounts(f"{self.title}\n{self.text}"))

    @cached_property
    def links(self) -> tuple[str, ...]:
        """The :func:`link_key` of every link written in title and text."""
        keys = (link_key(url) for url in links_in(f"{self.title}\n{self.text}"))
        return tuple(key for key in dict.fromkeys(keys) if key)

    @cached_property
    def host(self) -> str:
        """The host of the item's URL, lower case, without ``www.``."""
        return _host(self.url)

    @cached_property
    def url_key(self) -> str:
        """The :func:`link_key` of the item's URL."""
        return link_key(self.url)


def _word_matches(word: Word, folded: str, stripped: str) -> bool:
    candidate = folded if word.accented else stripped
    if word.pattern is not None:
        return word.pattern.fullmatch(candidate) is not None
    return candidate.startswith(word.text) if word.prefix else candidate == word.text


def _positions(word: Word, section: _Section) -> list[int]:
    candidates = section.folded if word.accented else section.stripped
    text = word.text
    if word.pattern is not None:
        match = word.pattern.fullmatch
        found = [i for i, candidate in enumerate(candidates) if match(candidate)]
    elif word.prefix:
        found = [i for i, candidate in enumerate(candidates) if candidate.startswith(text)]
    else:
        found = [i for i, candidate in enumerate(candidates) if candidate == text]
    if word.case_pattern is not None and found:
        raw, check = section.raw, word.case_pattern.fullmatch
        found = [
            i
            for i in found
            if i < len(raw) and check(raw[i] if word.accented else strip_accents(raw[i]))
        ]
    return found


Span = tuple[int, int]


def _spans_in(terms: Terms, section: _Section) -> list[Span]:
    """(first, last) word positions of each occurrence of ``terms`` in ``section``."""
    hits: list[list[int]] = []
    for word in terms.words:
        positions = _positions(word, section)
        if not positions:
            return []
        hits.append(positions)
    if len(hits) == 1:
        return [(p, p) for p in hits[0]]
    if terms.slop is None:
        rest = [set(positions) for positions in hits[1:]]
        return [
            (start, start + len(rest))
            for start in hits[0]
            if all(start + offset + 1 in positions for offset, positions in enumerate(rest))
        ]
    return _windows([[(p, p) for p in positions] for positions in hits], terms.slop)


def _windows(hits: Sequence[Sequence[Span]], extra: int) -> list[Span]:
    """Smallest windows holding a distinct occurrence of every part (each part's
    occurrences are spans), in which at most ``extra`` words belong to none of them; from
    each occurrence, the nearest following occurrence of every other part."""
    if any(not spans for spans in hits):
        return []
    events = sorted((start, end, part) for part, spans in enumerate(hits) for start, end in spans)
    bound = extra + sum(max(end - start + 1 for start, end in spans) for spans in hits)
    windows: list[Span] = []
    for index, (start, first_end, first_part) in enumerate(events):
        chosen = {first_part: (start, first_end)}
        covered, last = first_end - start + 1, first_end
        for begin, end, part in events[index + 1 :]:
            if begin - start + 1 > bound:
                break
            if part in chosen or any(
                begin <= taken_end and end >= taken_start
                for taken_start, taken_end in chosen.values()
            ):
                continue
            chosen[part] = (begin, end)
            covered += end - begin + 1
            last = max(last, end)
            if len(chosen) == len(hits):
                if last - start + 1 - covered <= extra:
                    windows.append((start, last))
                break
    return windows


def _close(a: Span, b: Span, distance: int, ordered: bool) -> bool:
    if ordered:
        return a[1] < b[0] and b[0] - a[1] - 1 <= distance
    return max(b[0] - a[1], a[0] - b[1]) - 1 <= distance


class _Matcher:
    """One item's evaluation: the spans of each word or phrase in each section are worked
    out once (for the match and again for the matched terms)."""

    __slots__ = ("document", "memo")

    def __init__(self, document: Document) -> None:
        self.document = document
        self.memo: dict[tuple[int, int], list[Span]] = {}

    def spans(self, node: Node, section: _Section) -> list[Span]:
        if isinstance(node, Terms):
            key = (id(node), id(section))
            found = self.memo.get(key)
            if found is None:
                found = self.memo[key] = _spans_in(node, section)
            return found
        if isinstance(node, Or):
            return [span for child in node.children for span in self.spans(child, section)]
        if isinstance(node, Near):
            left = self.spans(node.left, section)
            right = self.spans(node.right, section) if left else []
            return [
                (min(a[0], b[0]), max(a[1], b[1]))
                for a in left
                for b in right
                if _close(a, b, node.distance, node.ordered)
            ]
        if isinstance(node, Within):
            return _windows([self.spans(part, section) for part in node.parts], node.distance)
        raise TypeError(f"{type(node).__name__} has no position in the text")

    def near(self, node: Near, section: _Section) -> bool:
        left = self.spans(node.left, section)
        if not left:
            return False
        right = self.spans(node.right, section)
        return any(_close(a, b, node.distance, node.ordered) for a in left for b in right)

    def evaluate(self, node: Node, sections: Sequence[_Section]) -> bool:
        if isinstance(node, Terms):
            return any(self.spans(node, section) for section in sections)
        if isinstance(node, And):
            return all(self.evaluate(child, sections) for child in node.children)
        if isinstance(node, Or):
            return any(self.evaluate(child, sections) for child in node.children)
        if isinstance(node, Not):
            return not self.evaluate(node.child, sections)
        if isinstance(node, Near):
            return any(self.near(node, section) for section in sections)
        if isinstance(node, Within):
            return any(self.spans(node, section) for section in sections)
        if isinstance(node, FieldFilter):
            return _field_matches(node, self.document)
        if isinstance(node, Entity):
            return _entity_matches(node, self.document)
        return self.evaluate(node.child, (self.document.title_words,))


def _entity_matches(node: Entity, document: Document) -> bool:
    if node.kind == "hashtag":
        word = node.word
        assert word is not None
        return any(_word_matches(word, tag, stripped) for tag, stripped in document.hashtags)
    if node.kind == "account":
        wanted = node.value
        instance = "@" in wanted[1:]
        return any(
            account == wanted or (not instance and account.startswith(wanted + "@"))
            for account in document.accounts
        )
    return any(_under(node.value, key) for key in document.links)


def _host(url: str) -> str:
    try:
        host = (urlsplit(url if "://" in url else f"//{url}").hostname or "").casefold()
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _domain_matches(wanted: str, host: str) -> bool:
    return bool(host) and (host == wanted or host.endswith("." + wanted))


def _field_matches(node: FieldFilter, item: Document) -> bool:
    value = node.key
    if node.name in ("lang", "language"):
        language = fold(item.language)
        return language == value or language.split("-", 1)[0] == value
    if node.name in ("domain", "site"):
        return _domain_matches(value, item.host)
    if node.name == "url":
        return bool(value) and _under(value, item.url_key)
    if node.name == "source":
        return (
            value == fold(item.source)
            or value == fold(item.feed)
            or _domain_matches(_host(value) or value, _host(source_location(item.feed)))
        )
    # author
    return bool(_spans_in(Terms(node.words, None, "", 0), item.author_words))


def _positive_leaves(
    node: Node, negated: bool = False, title_only: bool = False
) -> Iterable[tuple[Terms | Entity, bool]]:
    if isinstance(node, Terms | Entity):
        if not negated:
            yield node, title_only
    elif isinstance(node, Near):
        yield from _positive_leaves(node.left, negated, title_only)
        yield from _positive_leaves(node.right, negated, title_only)
    elif isinstance(node, Within):
        for part in node.parts:
            yield from _positive_leaves(part, negated, title_only)
    elif isinstance(node, InTitle):
        yield from _positive_leaves(node.child, negated, True)
    elif isinstance(node, Not):
        yield from _positive_leaves(node.child, not negated, title_only)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from _positive_leaves(child, negated, title_only)
