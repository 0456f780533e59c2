"""The subscriber's plain parts: start positions, decoding, the formats, the signature and
the webhook's answers, the command line's checks."""

from __future__ import annotations

import csv
import io
import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import legation_subscribe.events
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from legation_subscribe import Event, InvalidRecord, Refused, RetryLater, Start, WebhookSink
from legation_subscribe.cli import main
from legation_subscribe.events import CSV_COLUMNS, Envelope, decode
from legation_subscribe.sinks import CsvSink, JsonLinesSink, sign, verify_signature

from legation.events.v1 import listen_pb2
from legation_core.catalog import TopicSpec, default_catalog
from legation_core.codec import envelope_from_json


def envelope_bytes(**changes: Any) -> bytes:
    envelope = Envelope(
        event_id="e-1",
        event_type="legation.events.v1.Mention",
        schema_version=1,
        source_service="listener",
        mention=listen_pb2.Mention(mention_id="m-1", language="fr", text="Bonjour, le traité"),
    )
    envelope.occurred_at.FromDatetime(datetime(2026, 11, 20, 9, 15, tzinfo=UTC))
    for name, value in changes.items():
        setattr(envelope, name, value)
    return envelope.SerializeToString()


def event(n: int = 1) -> Event:
    return decode("t", 0, n, 1_700_000_000_000, b"m-1", envelope_bytes(event_id=f"e-{n}"))


def test_start_positions() -> None:
    assert Start.parse("beginning") == Start("beginning")
    assert Start.parse("end") == Start("end")
    at = Start.parse("2026-11-20T09:00Z")
    assert at.kind == "time" and at.at == datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert Start.parse("2026-11-20T10:00+01:00").at == at.at
    with pytest.raises(ValueError, match="UTC offset"):
        Start.parse("2026-11-20T09:00")
    with pytest.raises(ValueError, match="beginning, end or an ISO 8601 time"):
        Start.parse("yesterday")


def test_decode_gives_a_typed_event_and_refuses_what_is_not_one() -> None:
    decoded = event()
    assert decoded.payload.DESCRIPTOR.full_name == "legation.events.v1.Mention"
    assert decoded.envelope.mention.language == "fr"
    assert decoded.key == "m-1"
    for value, reason in [
        (None, "tombstone"),
        (b"\xff\xff", "not a legation.events.v1.Envelope"),
        (Envelope(event_id="x").SerializeToString(), "no payload"),
        (envelope_bytes(schema_version=2), "unsupported schema_version 2"),
        (envelope_bytes(event_type="legation.events.v1.Alert"), "does not match payload"),
        (envelope_bytes(event_id=""), "missing event_id"),
    ]:
        with pytest.raises(InvalidRecord, match=reason):
            decode("t", 0, 0, 0, None, value)


def test_a_json_line_and_a_csv_row() -> None:
    line = json.loads(event().to_json_line())
    assert line["event"]["mention"]["text"] == "Bonjour, le traité"
    assert line["event"]["occurred_at"] == "2026-11-20T09:15:00Z"
    assert (line["topic"], line["offset"], line["key"]) == ("t", 1, "m-1")
    stream = io.StringIO()
    CsvSink(stream, sync=False, header=True).deliver([event(1), event(2)])
    rows = list(csv.reader(io.StringIO(stream.getvalue())))
    assert rows[0] == list(CSV_COLUMNS)
    assert [row[5] for row in rows[1:]] == ["e-1", "e-2"]
    assert json.loads(rows[1][-1])["language"] == "fr"


def hostile(envelope: Envelope) -> Envelope:
    """A copy whose payload's single values take their hardest JSON forms: doubles NaN,
    floats -Infinity, 64-bit integers at their limits (strings in JSON), enums at a number
    they do not name, strings with quotes, commas, a NUL, an RTL override and accents."""
    copy = Envelope()
    copy.CopyFrom(envelope)
    field_name = copy.WhichOneof("payload")
    assert field_name is not None
    payload: Message = getattr(copy, field_name)
    by_type: dict[int, Any] = {
        FieldDescriptor.CPPTYPE_DOUBLE: float("nan"),
        FieldDescriptor.CPPTYPE_FLOAT: float("-inf"),
        FieldDescriptor.CPPTYPE_INT64: -(2**63),
        FieldDescriptor.CPPTYPE_UINT64: 2**64 - 1,
        FieldDescriptor.CPPTYPE_ENUM: 999,
        FieldDescriptor.CPPTYPE_STRING: 'a "quoted", \x00 \u202e traité\n',
    }
    for field in payload.DESCRIPTOR.fields:
        value = by_type.get(field.cpp_type)
        if value is None or field.is_repeated or field.containing_oneof is not None:
            continue
        if field.type == FieldDescriptor.TYPE_BYTES:
            value = b"\x00\xff"
        setattr(payload, field.name, value)
    return copy


def written(events: list[Event]) -> tuple[str, str]:
    """What the JSON lines and CSV sinks write for ``events`` (a webhook body is the JSON
    line of its event)."""
    lines, table = io.StringIO(), io.StringIO()
    JsonLinesSink(lines, sync=False).deliver(events)
    CsvSink(table, sync=False, header=True).deliver(events)
    return lines.getvalue(), table.getvalue()


@pytest.mark.parametrize("spec", list(default_catalog()), ids=lambda spec: spec.name)
def test_the_formats_are_byte_for_byte_those_message_to_dict_gave(
    spec: TopicSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The envelope's JSON form comes from the compiled converter (legation_proto_json);
    every catalog example, as it is and with hostile values, is written exactly as when it
    came from ``json_format.MessageToDict`` (compared in one process: a map's order is
    protobuf's, which may differ from one process to the next)."""
    envelope = envelope_from_json(spec.example)
    events = [
        Event(spec.name, 5, 2**40, 1_700_000_000_123, 'clé, "k"', each)
        for each in (envelope, hostile(envelope))
    ]
    fast = written(events)
    converted: list[str] = []

    def message_to_dict(message: Message) -> dict[str, Any]:
        converted.append(message.DESCRIPTOR.full_name)
        return json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )

    monkeypatch.setattr(legation_subscribe.events, "message_to_dict", message_to_dict)
    assert written(events) == fast
    assert converted == ["legation.events.v1.Envelope"] * 4  # both events, both formats


def test_the_signature_checks_body_secret_and_age() -> None:
    header = sign(b"s" * 16, b"{}", 1_000)
    assert verify_signature(b"s" * 16, header, b"{}", now=1_100)
    assert not verify_signature(b"s" * 16, header, b"{ }", now=1_100)
    assert not verify_signature(b"x" * 16, header, b"{}", now=1_100)
    assert not verify_signature(b"s" * 16, header, b"{}", now=1_000 + 301)
    assert not verify_signature(b"s" * 16, "garbage", b"{}", now=1_000)


class _Answers(ThreadingHTTPServer):
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[bytes] = []
        super().__init__(("127.0.0.1", 0), _Answer)


class _Answer(BaseHTTPRequestHandler):
    server: _Answers

    def do_POST(self) -> None:
        self.server.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(self.server.statuses.pop(0))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return None


@pytest.fixture
def answers() -> Iterator[_Answers]:
    server = _Answers([])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_webhook_says_how_far_it_got(answers: _Answers) -> None:
    sink = WebhookSink(f"http://127.0.0.1:{answers.server_address[1]}/hook", b"s" * 16)
    answers.statuses += [204, 503]
    with pytest.raises(RetryLater) as retry:
        sink.deliver([event(1), event(2), event(3)])
    assert retry.value.done == 1
    answers.statuses += [200, 422]
    with pytest.raises(Refused) as refused:
        sink.deliver([event(2), event(3)])
    assert refused.value.event.envelope.event_id == "e-3"
    assert "HTTP 422" in refused.value.reason
    sink.close()
    with pytest.raises(RetryLater, match="unreachable") as down:
        WebhookSink("http://127.0.0.1:9/hook", b"s" * 16, timeout=2).deliver([event(1)])
    assert down.value.done == 0


def test_the_command_line_names_a_bad_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    base = ["--bootstrap", "127.0.0.1:9", "--group", "g", "--topic", "t"]
    assert main([*base, "--from", "soon"]) == 2
    assert "--from: start must be" in capsys.readouterr().err
    assert main([*base, "--format", "webhook"]) == 2
    assert "--webhook-url is required" in capsys.readouterr().err
    monkeypatch.delenv("LEGATION_SUBSCRIBE_WEBHOOK_SECRET", raising=False)
    assert main([*base, "--format", "webhook", "--webhook-url", "http://x/"]) == 2
    assert "LEGATION_SUBSCRIBE_WEBHOOK_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("LEGATION_SUBSCRIBE_WEBHOOK_SECRET", "s" * 16)
    assert main([*base, "--format", "webhook", "--webhook-url", "ftp://x/"]) == 2
    assert "--webhook-url" in capsys.readouterr().err
    assert main([*base, "--max-batch", "0"]) == 2
    assert main([*base, "--sasl-mechanism", "SCRAM-SHA-512"]) == 2
    assert "LEGATION_SUBSCRIBE_SASL_PASSWORD" in capsys.readouterr().err


def test_the_package_stands_alone() -> None:
    """A department installs it without the platform: it may import only the standard
    library, kafka-python, protobuf and the contracts package (whose hand-written part, the
    JSON converter in lib/, imports no more), and depends on nothing else."""
    import ast
    import tomllib

    package = Path(__file__).resolve().parent.parent
    # legation and legation_proto_json: the contracts package's.
    allowed = set(sys.stdlib_module_names) | {
        "kafka",
        "google",
        "legation",
        "legation_proto_json",
        "legation_subscribe",
    }
    converter = package.parent / "legation-contracts" / "lib"
    sources = [*(package / "src" / "legation_subscribe").glob("*.py"), *converter.rglob("*.py")]
    assert any(path.name == "__init__.py" for path in converter.rglob("*.py"))
    for path in sources:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in allowed, (path.name, name)
                assert not name.startswith(("legation_core", "legation_devstack")), name
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == ["legation-contracts", "kafka-python>=3.0"]
