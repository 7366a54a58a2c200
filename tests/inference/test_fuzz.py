"""Fuzzing of request parsing: in-process through input_fn, and against one real server."""

from __future__ import annotations

import http.client
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.errors import RequestError
from inference.hooks import input_fn
from inference.parsing import CSV, CSV_COLUMNS, JSON, MAX_FIELD_CHARS, ParsedRequest
from processing.schema import REQUEST_FIELDS
from tests.inference.test_parsing import NOW_MS, VALID_LOAD, csv_cell, nested
from tests.inference.test_server import (
    PROXY_VARIABLES,
    SERVER_START_SECONDS,
    free_port,
    served,
    wait_until_ready,
)

IN_PROCESS_EXAMPLES = 400
SERVER_EXAMPLES = 300
# Generous: a check_request message may quote two strings of MAX_FIELD_CHARS.
MAX_MESSAGE_CHARS = 2 * MAX_FIELD_CHARS + 500
HTTP_TIMEOUT_SECONDS = 30.0
# Reproducible runs: the same examples every time, nothing read from or written to .hypothesis/.
FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# JSON texts that no Python value dumps to: spliced into documents as raw fragments.
HOSTILE_JSON = (
    nested(1000),  # parses, and Python's repr of it raises RecursionError
    nested(1024, b"1"),
    nested(1025),  # beyond orjson's depth limit
    b'{"a":' * 1000 + b"1" + b"}" * 1000,
    b"1e400",
    b"-1e400",
    b"9" * 400,
    b"18446744073709551616",
    b"1e-400",
    b"-0.0",
    b"NaN",
    b"Infinity",
    b'"\\ud800"',
    b'"\\udc00x"',
    b'"\\ud83d\\ude9a"',
    b'"\\u0000"',
    b'"\\u202eDE-80"',
    b'"DE-80\\u200f"',
    b"[" + b"1," * 50_000 + b"1]",
    b'"' + b"x" * 150_000 + b'"',
)
HOSTILE_TEXT = (
    "",
    " ",
    "DE-80\u200f",
    "\u202eDE-80",
    "reefer\u200b",
    "\u2028",
    "\ufeff",
    "\x00",
    "x" * (MAX_FIELD_CHARS + 1),
    "9" * 5_000,
    "2026-03-04T08:00:00",
    "2026-03-04T08:00:00." + "1" * 2_000 + "Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "nan",
    "inf",
    "1e400",
    "1_000",
    "\U0001f69a",
)
HOSTILE_CELLS = (
    *HOSTILE_TEXT,
    '"',
    '"DE-80"',
    '"a""b"',
    'a"b',
    '"DE"-80',
    ",",
    "\r",
    "\n",
    "\r\n",
    "x" * 140_000,
)
HOSTILE_BYTES = (b"\x00", b"\xff", b"\xed\xa0\x80", b"\xc3", b"\r", b"\n", b'"', b",", b"[", b"{")
CONTENT_TYPES = (
    JSON,
    CSV,
    "application/json; charset=utf-8",
    "text/csv;charset=latin-1",
    "",
    "application/xml",
    "text/plain",
)

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=30) | st.sampled_from(
    HOSTILE_TEXT
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | st.sampled_from(HOSTILE_JSON).map(orjson.Fragment),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from([*REQUEST_FIELDS, "load_id", "shipper_id"]) | texts
# A field's new value: as often a hostile fragment as any other JSON value.
field_values = st.sampled_from(HOSTILE_JSON).map(orjson.Fragment) | json_values


@st.composite
def mutated_loads(draw: st.DrawFn) -> dict[str, Any]:
    """VALID_LOAD with a few fields replaced, removed or added."""
    load: dict[str, Any] = dict(VALID_LOAD)
    for name in draw(st.lists(field_names, max_size=4, unique=True)):
        if draw(st.booleans()) and name in load:
            del load[name]
        else:
            load[name] = draw(field_values)
    return load


def mutate_bytes(draw: st.DrawFn, body: bytes) -> bytes:
    """A few bytes of ``body`` inserted, deleted or replaced."""
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(body)))
        edit = draw(st.sampled_from(HOSTILE_BYTES) | st.binary(min_size=1, max_size=3))
        cut = draw(st.integers(0, 2))
        body = body[:at] + edit + body[at + cut :]
    return body


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    loads = draw(st.lists(mutated_loads(), max_size=3))
    shape = draw(st.sampled_from(["object", "list", "instances", "value"]))
    document: Any
    if shape == "object":
        document = loads[0] if loads else {}
    elif shape == "list":
        document = loads
    elif shape == "instances":
        document = {"instances": loads if draw(st.booleans()) else draw(json_values)}
    else:
        document = draw(json_values)
    body = orjson.dumps(document)
    return mutate_bytes(draw, body) if draw(st.booleans()) else body


@st.composite
def csv_bodies(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        cells = [csv_cell(VALID_LOAD[name]) for name in CSV_COLUMNS]
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(cells) - 1))
            cells[at] = draw(st.sampled_from(HOSTILE_CELLS) | texts)
        if draw(st.integers(0, 9)) == 0:
            cells = cells[: draw(st.integers(0, len(cells)))]
        lines.append(",".join(cells) + draw(st.sampled_from(["\n", "\r\n", "\r", ""])))
    body = "".join(lines).encode()
    return mutate_bytes(draw, body) if draw(st.booleans()) else body


# A body and its Content-Type: mostly the matching type, sometimes another one.
requests = st.one_of(
    st.tuples(json_bodies(), st.just(JSON)),
    st.tuples(csv_bodies(), st.just(CSV)),
    st.tuples(
        json_bodies() | csv_bodies() | st.binary(max_size=200), st.sampled_from(CONTENT_TYPES)
    ),
)


def assert_parsed_or_refused(body: bytes, content_type: str) -> None:
    """input_fn gives a request or a 4xx RequestError whose body the server can send."""
    outcome: ParsedRequest | RequestError
    try:
        outcome = input_fn(body, content_type, now_ms=NOW_MS)
    except RequestError as error:
        outcome = error
    if isinstance(outcome, RequestError):
        assert 400 <= outcome.status < 500, (outcome.status, outcome.code)
        assert outcome.code
        assert len(outcome.message) <= MAX_MESSAGE_CHARS, outcome.code
        orjson.dumps(outcome.to_json())  # what the server sends: must encode
        return
    assert outcome.loads
    assert len(outcome.loads) == len(outcome.load_ids)
    assert all(set(load) == set(REQUEST_FIELDS) for load in outcome.loads)
    assert all(load_id is None or isinstance(load_id, str) for load_id in outcome.load_ids)


@settings(FUZZ_SETTINGS, max_examples=IN_PROCESS_EXAMPLES)
@given(request=requests)
def test_input_fn_parses_or_refuses_with_a_4xx(request: tuple[bytes, str]) -> None:
    assert_parsed_or_refused(*request)


@settings(FUZZ_SETTINGS, max_examples=IN_PROCESS_EXAMPLES // 4)
@given(raw=field_values, field=st.sampled_from([*REQUEST_FIELDS, "load_id"]))
def test_any_json_value_in_any_field_parses_or_refuses(raw: Any, field: str) -> None:
    # One field changed, the others valid: the value reaches its parser and its message.
    assert_parsed_or_refused(orjson.dumps({**VALID_LOAD, field: raw}), JSON)


# Outside hypothesis on purpose: @given raises the recursion limit (to 2,000 and more), which hid
# the RecursionError of repr on 1,000 levels that the server, at Python's 1,000, answered with 500.
@pytest.mark.parametrize("fragment", HOSTILE_JSON, ids=range(len(HOSTILE_JSON)))
@pytest.mark.parametrize("field", ["<body>", "equipment_type", "weight_kg", "load_id"])
def test_every_hostile_fragment_parses_or_refuses(fragment: bytes, field: str) -> None:
    body = (
        fragment
        if field == "<body>"
        else orjson.dumps({**VALID_LOAD, field: orjson.Fragment(fragment)})
    )
    assert_parsed_or_refused(body, JSON)


# -- one real server ------------------------------------------------------------------------------


class KeepAliveClient:
    """POSTs over one keep-alive connection to 127.0.0.1, reconnecting when the server closes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT_SECONDS)

    def request(self, method: str, path: str, body: bytes = b"", content_type: str = "") -> int:
        headers = {"Content-Type": content_type} if content_type else {}
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                # The server closed the idle connection between two requests: once more, anew.
                self.connection.close()
                self.connection = self._connect()
                if attempt == 1:
                    raise
                continue
            if response.will_close:
                self.connection.close()
                self.connection = self._connect()
            return response.status
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


@pytest.mark.integration
def test_the_server_answers_fuzzed_requests_without_a_5xx(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loopback only: no proxy may sit between the client and the server.
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    port = free_port()
    statuses: Counter[int] = Counter()
    with served(model_dir, port, tmp_path / "server.log") as process:
        wait_until_ready(f"http://127.0.0.1:{port}/ping", process, SERVER_START_SECONDS)
        client = KeepAliveClient(port)

        @settings(FUZZ_SETTINGS, max_examples=SERVER_EXAMPLES)
        @given(request=requests)
        def post_fuzzed(request: tuple[bytes, str]) -> None:
            body, content_type = request
            status = client.request("POST", "/invocations", body, content_type)
            statuses[status] += 1
            assert status < 500, (status, body[:200], content_type)

        try:
            post_fuzzed()
            assert client.request("GET", "/ping") == 200
        finally:
            client.close()
        assert process.poll() is None, "the server died during the fuzz run"
    # The fuzzed requests reached the parser and the model: some were priced, some refused.
    assert {200, 400, 415} <= set(statuses), statuses
