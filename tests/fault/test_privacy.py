"""Scenario 9: a sentinel in payloads and metadata never shows in errors, reprs or logs.

Every backend runs the same calls, good and bad, with a sentinel string in
payloads and metadata, with logging at DEBUG: once under
`structlog.testing.capture_logs`, once through the stdlib (caplog, every
logger, psycopg's included). On Postgres a CHECK constraint added to the
test's schema makes the server itself reject the rows: its error DETAIL
("Failing row contains (...)") carries the row, which must not get through.
"""

from __future__ import annotations

import logging
import math
import pickle
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pgserver
import psycopg
import pytest
import structlog
from conftest import Backend

import eventlog
from eventlog import (
    CorruptionError,
    Entry,
    EventlogError,
    IdConflictError,
    InvalidLeafError,
    InvalidPayloadError,
    PayloadTooLargeError,
    RawJSON,
    SessionData,
    SessionDelta,
)

from .figures import measured

pytestmark = pytest.mark.fault

SENTINEL = "SENTINEL-c0ffee-do-not-print"
# The forms the sentinel may take in a message: as text, and as the hex Postgres
# prints for bytea, of which a value description shows only the first 64
# characters (so the start of the sentinel is enough to count as a leak).
_HEX = SENTINEL[:12].encode().hex()
FORMS = (SENTINEL[:12], _HEX, _HEX.upper())
LIMIT = 16 * 1024 * 1024


def _leaks(text: str) -> bool:
    return any(form in text for form in FORMS)


def _secret(**extra: Any) -> dict[str, Any]:
    return {"text": f"my card is {SENTINEL}", SENTINEL: [SENTINEL], **extra}


def _not_an_object(value: list[str]) -> Any:
    return value  # a wrong type on purpose


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {SENTINEL: SENTINEL}
    for _ in range(depth):
        value = {SENTINEL: value}
    return value


Call = Callable[[eventlog.Store, str], object]

# Calls that must succeed: their results and log lines must not show the sentinel.
GOOD: list[Call] = [
    lambda s, sid: s.save_delta(
        sid, SessionDelta([Entry("a", None, "message", None, _secret())], metadata=_secret())
    ),
    lambda s, sid: s.save_delta(
        sid,
        SessionDelta(
            [Entry("b", "a", "message", None, RawJSON(b'{"s": "%s"}' % SENTINEL.encode()))],
            leaf_id="b",
        ),
    ),
    lambda s, sid: s.load(sid),
    lambda s, sid: s.load(sid, raw=True),
    lambda s, sid: s.load(sid, at_version=1),
    lambda s, sid: s.path(sid),
    lambda s, sid: s.list_sessions(prefix=sid),
    lambda s, sid: s.save(
        sid, SessionData([Entry("a", None, "message", None, _secret())], "a", _secret(n=2))
    ),
    lambda s, sid: s.fork(sid, f"{sid}-fork"),
    lambda s, sid: s.purge(sid),
    lambda s, sid: s.delete(f"{sid}-fork"),
]

# Calls that must fail, each with the sentinel in the offending value or next to it.
BAD: list[tuple[Call, type[EventlogError]]] = [
    (
        lambda s, sid: s.save_delta(sid, SessionDelta([Entry("x", payload=_secret(nan=math.nan))])),
        InvalidPayloadError,
    ),
    (
        lambda s, sid: s.save_delta(
            sid, SessionDelta([Entry("x", payload=_secret(k={1: SENTINEL}))])
        ),
        InvalidPayloadError,
    ),
    (
        lambda s, sid: s.save_delta(
            sid, SessionDelta([Entry("x", payload=_secret(u="\ud800" + SENTINEL))])
        ),
        InvalidPayloadError,
    ),
    (
        lambda s, sid: s.save_delta(sid, SessionDelta([Entry("x", payload=_secret(o={SENTINEL}))])),
        InvalidPayloadError,
    ),
    (
        lambda s, sid: s.save_delta(sid, SessionDelta([Entry("x", payload=_deep(300))])),
        InvalidPayloadError,
    ),
    (
        lambda s, sid: s.save_delta(
            sid, SessionDelta([Entry("x", payload=RawJSON(b'{"s": "%s' % SENTINEL.encode()))])
        ),
        InvalidPayloadError,
    ),
    (
        lambda s, sid: s.save_delta(
            sid,
            SessionDelta(
                [Entry("x", payload=RawJSON(b'{"s": "%s", "n": NaN}' % SENTINEL.encode()))]
            ),
        ),
        InvalidPayloadError,
    ),
    (
        lambda s, sid: s.save_delta(
            sid, SessionDelta([Entry("x", payload=RawJSON(b'["%s"]' % SENTINEL.encode()))])
        ),
        InvalidPayloadError,
    ),
    (
        lambda s, sid: s.save_delta(
            sid, SessionDelta([Entry("x", payload={"s": SENTINEL * (LIMIT // len(SENTINEL) + 1)})])
        ),
        PayloadTooLargeError,
    ),
    (
        lambda s, sid: s.save_delta(sid, SessionDelta(metadata=_secret(inf=math.inf))),
        InvalidPayloadError,
    ),
    (
        lambda s, sid: s.save_delta(
            sid, SessionDelta(metadata=RawJSON(b'{"m": %s}' % SENTINEL.encode()))
        ),
        InvalidPayloadError,
    ),
    (
        lambda s, sid: s.save_delta(sid, SessionDelta(metadata=_not_an_object([SENTINEL]))),
        InvalidPayloadError,
    ),
    (
        lambda s, sid: s.save_delta(sid, SessionDelta([Entry("a", payload={"changed": SENTINEL})])),
        IdConflictError,
    ),
    (
        lambda s, sid: s.save_delta(
            sid, SessionDelta([Entry("y", payload=_secret()), Entry("y", payload=_secret(n=1))])
        ),
        IdConflictError,
    ),
    (
        lambda s, sid: s.save_delta(
            sid, SessionDelta([Entry("z", payload=_secret())], leaf_id="nope", metadata=_secret())
        ),
        InvalidLeafError,
    ),
    (
        lambda s, sid: s.save(sid, SessionData([Entry("a", payload=_secret())], "nope", _secret())),
        InvalidLeafError,
    ),
]


def _error_texts(error: BaseException) -> list[str]:
    """Everything an application may print of an error: message, repr, traceback, pickle."""
    return [
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        repr(pickle.loads(pickle.dumps(error))),
        repr(pickle.dumps(error)),
    ]


def _exercise(store: eventlog.Store, sid: str) -> tuple[list[str], list[str], int]:
    """Run every call; returns (what leaked, what went wrong otherwise, texts checked)."""
    leaks: list[str] = []
    wrong: list[str] = []
    checked = 0
    for index, good in enumerate(GOOD):
        result = good(store, sid)
        checked += 1
        if _leaks(repr(result)) or _leaks(str(result)):
            leaks.append(f"repr of the result of good call {index}")
    for index, (bad, expected) in enumerate(BAD):
        try:
            bad(store, sid)
        except EventlogError as error:
            if not isinstance(error, expected):
                wrong.append(f"bad call {index}: {type(error).__name__}, not {expected.__name__}")
            for text in _error_texts(error):
                checked += 1
                if _leaks(text):
                    leaks.append(f"bad call {index}: {type(error).__name__}: {text[:300]}")
        else:
            wrong.append(f"bad call {index}: no error")
    return leaks, wrong, checked


@contextmanager
def _server_rejects_the_sentinel(backend: Backend) -> Iterator[int]:
    """On Postgres, CHECK constraints that make the server refuse rows holding the sentinel
    (yields how many); elsewhere nothing."""
    if not backend.name.startswith("postgres"):
        yield 0
        return
    schema = backend.schema
    assert schema is not None
    hexed = SENTINEL.encode().hex()
    constraints = {
        "entries": f"position('\\x{hexed}'::bytea in payload) = 0",
        "sessions": f"position('\\x{hexed}'::bytea in metadata) = 0",
    }
    with psycopg.connect(pgserver.server_dsn(), autocommit=True) as admin:
        for table, check in constraints.items():
            admin.execute(
                f"ALTER TABLE {schema}.{table} ADD CONSTRAINT fault_privacy CHECK ({check})"
            )
        try:
            yield len(constraints)
        finally:
            for table in constraints:
                admin.execute(f"ALTER TABLE {schema}.{table} DROP CONSTRAINT fault_privacy")


def _database_errors(store: eventlog.Store, sid: str) -> tuple[list[str], list[str], int]:
    """Writes the server itself rejects: the translated errors must not carry its DETAIL."""
    leaks: list[str] = []
    details = 0
    calls: list[Call] = [
        lambda s, sid: s.save_delta(sid, SessionDelta([Entry("p", payload={"s": SENTINEL})])),
        lambda s, sid: s.save_delta(sid, SessionDelta(metadata={"s": SENTINEL})),
        lambda s, sid: s.save(sid, SessionData([Entry("q", payload={"s": SENTINEL})])),
    ]
    wrong: list[str] = []
    for index, call in enumerate(calls):
        try:
            call(store, sid)
        except CorruptionError as error:
            for text in _error_texts(error):
                if _leaks(text):
                    leaks.append(f"database error {index}: {text[:300]}")
            # The driver's exception (whose DETAIL holds the row) is not kept either.
            if error.__context__ is not None or error.__cause__ is not None:
                leaks.append(f"database error {index}: keeps the driver exception")
        except Exception as error:
            wrong.append(f"database error {index}: {type(error).__name__}")
        else:
            wrong.append(f"database error {index}: no error")
    return leaks, wrong, details


def _server_detail_shows_the_row(schema: str) -> bool:
    """The check has teeth: the server's own error for such a row carries it in DETAIL."""
    with psycopg.connect(pgserver.server_dsn(), autocommit=True) as admin:
        try:
            admin.execute(
                f"INSERT INTO {schema}.entries (session_id, seq, pos, entry_id, kind, payload, "
                "digest, added_in_version) VALUES ('probe', 0, 0, 'p', 'message', %s, '', 1)",
                (SENTINEL.encode(),),
            )
        except psycopg.errors.CheckViolation as exc:
            return _leaks(str(exc.diag.message_detail))
    return False


def test_sentinel_never_in_errors_reprs_or_logs(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    store = backend.store
    with measured("9. payload privacy", backend.name) as figures:
        caplog.set_level(logging.DEBUG)  # every logger: eventlog, psycopg, the pool
        # First, while the tables hold no sentinel yet (the constraints check old rows).
        with _server_rejects_the_sentinel(backend) as constraints:
            leaks, wrong, details = (
                _database_errors(store, "priv-db") if constraints else ([], [], 0)
            )
            if constraints:
                assert backend.schema is not None
                details = int(_server_detail_shows_the_row(backend.schema))
        with structlog.testing.capture_logs() as captured:
            more_leaks, more_wrong, checked = _exercise(store, "priv-structlog")
        structlog_lines = [repr(line) for line in captured]
        leaks += more_leaks
        wrong += more_wrong
        more_leaks, more_wrong, more_checked = _exercise(store, "priv-stdlib")
        leaks += more_leaks
        wrong += more_wrong
        checked += more_checked
        stdlib_lines = [record.getMessage() for record in caplog.records] + [caplog.text]
        lines = structlog_lines + stdlib_lines
        leaks += [f"log line: {line[:300]}" for line in lines if _leaks(line)]
        figures.operations = 2 * (len(GOOD) + len(BAD)) + (3 if constraints else 0)
        figures.faults = 2 * len(BAD) + (3 if constraints else 0)
        figures.notes = (
            f"{len(leaks)} leaks in {checked} error texts/reprs and {len(lines)} log lines"
            + ("; the server's DETAIL for such a row carried it" if details else "")
        )
    assert any("save_delta" in line for line in structlog_lines), "no debug lines captured"
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    assert not wrong, wrong
    assert not leaks, leaks
    if constraints:
        assert details, "the server's errors did not carry the row: the check has no teeth"


def test_the_leak_check_catches_a_leaky_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """Broken on purpose: a log line with a payload in it must be reported."""
    with measured("9. broken: a log line with a payload", "memory", broken_variant=True) as fig:
        leaky = structlog.wrap_logger(logging.getLogger("eventlog"))
        caplog.set_level(logging.DEBUG, logger="eventlog")
        with structlog.testing.capture_logs() as captured:
            leaky.debug("save_delta", payload=_secret())
        leaky.debug("save_delta", payload=_secret())
        lines = [repr(line) for line in captured] + [r.getMessage() for r in caplog.records]
        fig.operations, fig.faults = 2, 2
        fig.notes = f"{sum(map(_leaks, lines))} leaks found in {len(lines)} lines"
    assert [_leaks(line) for line in lines] == [True, True]


def _text_forms(value: object) -> list[str]:
    """Every way an application turns a value into text: repr, str, f-string, %-format, log."""
    record = logging.LogRecord("eventlog", logging.INFO, __file__, 0, "%s", (value,), None)
    percent = "%s" % (value,)  # noqa: UP031 (the %-operator is the form under test)
    return [repr(value), str(value), f"{value}", f"{value!s:>10}", percent, record.getMessage()]


_SECRET_BYTES = f'{{"secret": "{SENTINEL}"}}'.encode()
_ENTRY = Entry("e", payload={"secret": SENTINEL})
_RAW_ENTRY = Entry("e", payload=RawJSON(_SECRET_BYTES))
MODEL_OBJECTS: list[tuple[str, object]] = (
    [
        ("RawJSON", RawJSON(_SECRET_BYTES)),
        ("Entry", _ENTRY),
        ("Entry with RawJSON", _RAW_ENTRY),
        ("SessionData", SessionData([_ENTRY, _RAW_ENTRY], "e", {"secret": SENTINEL})),
        ("SessionData with RawJSON metadata", SessionData([], None, RawJSON(_SECRET_BYTES))),
        ("SessionDelta", SessionDelta([_ENTRY], metadata={"secret": SENTINEL})),
        ("SessionDelta with RawJSON", SessionDelta([_RAW_ENTRY], metadata=RawJSON(_SECRET_BYTES))),
        ("list of entries", [_ENTRY, _RAW_ENTRY]),
    ]
    + [
        (name, getattr(eventlog, name)("failed", session_id="s", entry_id="e", where="payload"))
        for name in eventlog.errors.__all__
        if name != "ConcurrencyError"
    ]
    + [("ConcurrencyError", eventlog.ConcurrencyError("stale", session_id="s"))]
)


@pytest.mark.parametrize(("name", "value"), MODEL_OBJECTS, ids=[n for n, _ in MODEL_OBJECTS])
def test_model_objects_and_errors_hide_payloads_in_every_text_form(
    name: str, value: object
) -> None:
    forms = _text_forms(value)
    assert not [form for form in forms if _leaks(form)], name
    if isinstance(value, RawJSON):
        # Hidden from text, the bytes themselves are still there for whoever asks.
        assert bytes(value) == _SECRET_BYTES and value == _SECRET_BYTES
