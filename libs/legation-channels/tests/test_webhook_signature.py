"""The webhook channel's signature, as a receiver checks it (``verify``)."""

from __future__ import annotations

import pytest

from legation_channels.adapters.webhook import sign, verify

NOW = 1_800_000_000


def test_a_signature_verifies_within_the_tolerance_only() -> None:
    header = sign("s3cret", NOW, b"{}")
    assert verify("s3cret", header, b"{}", NOW + 300)
    assert not verify("s3cret", header, b"{}", NOW + 301)
    assert not verify("other", header, b"{}", NOW)
    assert not verify("s3cret", header, b"{ }", NOW)


@pytest.mark.parametrize(
    "header",
    [
        f"t={NOW},v1=" + "é" * 64,  # compare_digest raised TypeError on str beyond ASCII
        f"t={NOW},v1=\udcff",
        "t=١٨٠٠٠٠٠٠٠٠,v1=00",  # int() reads Arabic-Indic digits: the time is right
        "v1=00",
        "garbage",
    ],
    ids=["non-ascii", "surrogate", "arabic-digits", "no-time", "garbage"],
)
def test_a_header_that_is_not_the_signature_is_refused_not_an_error(header: str) -> None:
    assert not verify("s3cret", header, b"{}", NOW)
