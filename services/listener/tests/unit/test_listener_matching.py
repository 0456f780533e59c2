"""Keyword matching: case-insensitive, whole words, multi-word keywords."""

from __future__ import annotations

import pytest

from legation.events.v1 import listen_pb2
from legation_listener.domain.matching import match_issue, matched_keywords


def issue(*keywords: str) -> listen_pb2.TrackedIssue:
    return listen_pb2.TrackedIssue(issue_id="i", name="I", keywords=keywords, feeds=["f"])


def test_matches_case_insensitively_in_title_or_text() -> None:
    tracked = issue("treaty", "pollution")
    assert match_issue(tracked, "The TREATY is signed", "") == ["treaty"]
    assert match_issue(tracked, "", "Air Pollution rises") == ["pollution"]
    assert match_issue(tracked, "Treaty talks", "on pollution") == ["treaty", "pollution"]


def test_requires_word_boundaries() -> None:
    tracked = issue("treaty", "UN")
    assert match_issue(tracked, "Treatyless states", "an unusual day, fun") == []
    assert match_issue(tracked, "The UN, again.", "") == ["UN"]
    assert match_issue(tracked, "(treaty)", "") == ["treaty"]


def test_multi_word_keywords_allow_any_whitespace_between_words() -> None:
    tracked = issue("plastics treaty")
    assert match_issue(tracked, "The Plastics\n  Treaty resumes", "") == ["plastics treaty"]
    assert match_issue(tracked, "plastics are not a treaty", "") == []
    assert match_issue(tracked, "plastics treatymaking", "") == []


def test_keywords_with_symbols_and_non_latin_scripts() -> None:
    assert matched_keywords(["#COP29", "C++"], "Live from #cop29 today", "") == ["#COP29"]
    assert matched_keywords(["C++"], "written in c++ code") == ["C++"]
    assert matched_keywords(["пластик"], "Договор про пластик сегодня") == ["пластик"]
    assert matched_keywords(["пластик"], "Договор про пластику") == []
    assert matched_keywords(["traité"], "Le TRAITÉ est signé") == ["traité"]


def test_reports_each_keyword_once_in_issue_order() -> None:
    assert matched_keywords(["b", "a", "b", " "], "a b a b") == ["b", "a"]


@pytest.mark.parametrize("text", ["", "nothing relevant here"])
def test_no_match_gives_empty_list(text: str) -> None:
    assert match_issue(issue("treaty"), text, text) == []
