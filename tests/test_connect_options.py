"""`connect` and `connect_async` check every option of every backend before opening anything.

A bad value is an `InvalidConfigError` at connect, never a raw `ValueError`,
`TypeError` or `OverflowError`, and never accepted only to fail on every write.
No error carries any part of a PostgreSQL URL's password.
"""

from __future__ import annotations

import asyncio
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pgserver
import pytest

import eventlog
from eventlog import Entry, InvalidConfigError, SessionData, SessionDelta

Opener = Callable[..., eventlog.Store | eventlog.AsyncStore]


def _open_sync(url: str, **options: Any) -> None:
    with eventlog.connect(url, **options) as store:
        store.save_delta("s", SessionDelta([Entry("a")]))


def _open_async(url: str, **options: Any) -> None:
    async def go() -> None:
        async with await eventlog.connect_async(url, **options) as store:
            await store.save_delta("s", SessionDelta([Entry("a")]))

    asyncio.run(go())


OPENERS = {"connect": _open_sync, "connect_async": _open_async}


@pytest.fixture(params=list(OPENERS))
def open_store(request: pytest.FixtureRequest) -> Callable[..., None]:
    return OPENERS[request.param]


BAD_SECONDS: list[object] = [
    "abc",
    "5",
    -5,
    -0.001,
    math.nan,
    math.inf,
    -math.inf,
    1e300,
    2**64,
    2_147_484,
    True,
    None,
    [1],
]
BAD_COMMON: list[tuple[str, object]] = [
    ("max_entry_bytes", 0),
    ("max_entry_bytes", -1),
    ("max_entry_bytes", 1.5),
    ("max_entry_bytes", True),
    ("max_entry_bytes", "10"),
    ("migrate", "no"),
    ("migrate", 0),
    ("migrate", None),
    ("snapshot_memo_bytes", -1),
    ("snapshot_memo_bytes", 1.5),
    ("snapshot_memo_bytes", True),
    ("snapshot_memo_bytes", "10"),
    ("bogus", 1),
]
BAD_SQLITE_OPTIONS = [("busy_timeout", v) for v in BAD_SECONDS] + [
    ("synchronous", None),
    ("synchronous", "off"),
    ("synchronous", 2),
    *BAD_COMMON,
]
BAD_SQLITE_QUERIES = [
    "busy_timeout=abc",
    "busy_timeout=-5",
    "busy_timeout=nan",
    "busy_timeout=inf",
    "busy_timeout=1e300",
    "busy_timeout=2147484",
    "busy_timeout=",
    "synchronous=off",
    "bogus=1",
]


def _ids(cases: list[tuple[str, object]]) -> list[str]:
    return [f"{name}={value!r}"[:40] for name, value in cases]


@pytest.mark.parametrize(("name", "value"), BAD_SQLITE_OPTIONS, ids=_ids(BAD_SQLITE_OPTIONS))
def test_bad_sqlite_option_is_invalid_config(
    open_store: Callable[..., None], tmp_path: Path, name: str, value: object
) -> None:
    path = tmp_path / "o.db"
    with pytest.raises(InvalidConfigError):
        open_store(f"sqlite:///{path}", **{name: value})
    assert not path.exists()  # refused before the file was created


@pytest.mark.parametrize("query", BAD_SQLITE_QUERIES)
def test_bad_sqlite_url_option_is_invalid_config(
    open_store: Callable[..., None], tmp_path: Path, query: str
) -> None:
    path = tmp_path / "o.db"
    with pytest.raises(InvalidConfigError):
        open_store(f"sqlite:///{path}?{query}")
    assert not path.exists()


@pytest.mark.parametrize(
    ("url_query", "options"),
    [
        ("", {"busy_timeout": 0}),
        ("", {"busy_timeout": 2.5, "synchronous": "normal"}),
        ("", {"busy_timeout": 2_147_483}),
        ("?busy_timeout=0.5&synchronous=normal", {}),
        ("?busy_timeout=7", {"migrate": True, "max_entry_bytes": 1024}),
        ("", {"snapshot_memo_bytes": 0}),
        ("", {"snapshot_memo_bytes": 1 << 20}),
    ],
)
def test_good_sqlite_options_are_accepted(
    open_store: Callable[..., None], tmp_path: Path, url_query: str, options: dict[str, Any]
) -> None:
    open_store(f"sqlite:///{tmp_path / 'o.db'}{url_query}", **options)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_entry_bytes", True),
        ("max_entry_bytes", 0),
        ("snapshot_memo_bytes", -1),
        ("snapshot_memo_bytes", False),
        ("bogus", 1),
    ],
)
def test_bad_memory_option_is_invalid_config(
    open_store: Callable[..., None], name: str, value: object
) -> None:
    with pytest.raises(InvalidConfigError):
        open_store("memory://", **{name: value})


BAD_POOL_SIZES: list[object] = ["a", 0, -1, 1.5, math.nan, True, None]
BAD_POSTGRES_OPTIONS: list[tuple[str, object]] = (
    [("timeout", v) for v in [*BAD_SECONDS, 0]]
    + [("min_size", v) for v in BAD_POOL_SIZES]
    + [("max_size", v) for v in BAD_POOL_SIZES]
    + [("partitions", v) for v in (True, 0, -2, 1.5, "2")]
    + BAD_COMMON
)


@pytest.fixture(scope="module")
def pg_url() -> str:
    return pgserver.dsn_or_skip()


@pytest.mark.parametrize(("name", "value"), BAD_POSTGRES_OPTIONS, ids=_ids(BAD_POSTGRES_OPTIONS))
def test_bad_postgres_option_is_invalid_config(
    open_store: Callable[..., None], pg_url: str, name: str, value: object
) -> None:
    with pytest.raises(InvalidConfigError):
        open_store(pg_url, **{name: value})


def test_postgres_pool_sizes_must_be_ordered(open_store: Callable[..., None], pg_url: str) -> None:
    with pytest.raises(InvalidConfigError):
        open_store(pg_url, min_size=5, max_size=2)


PASSWORD = "Hunter2Zq"
PASSWORD_PARTS = ("Hunter", "2Zq", "Hunter2", "unter2Z")
MALFORMED_URLS = [
    f"postgresql://postgres:{PASSWORD}%zz@127.0.0.1/x",
    f"postgresql://postgres:%zz{PASSWORD}@127.0.0.1/x",
    f"postgresql://postgres:{PASSWORD}@[::1/x",
    f"postgresql://postgres:{PASSWORD}@[::1",
    f"postgresql://postgres:{PASSWORD}%00@127.0.0.1/x",
    f'postgresql://postgres:"{PASSWORD}"%zz@127.0.0.1/x',
    f"postgresql://postgres:{PASSWORD}@127.0.0.1:notaport/x",
    f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/x?connect_timeout=soon",
    f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/x?no_such_option=1",
    f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/x?=1",
    f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/x?a==1",
    f"postgresql://postgres@127.0.0.1:5432/x?password={PASSWORD}%zz",
    f"postgres://postgres:{PASSWORD}@127.0.0.1/x?options=%zz",
    f"postgresql://postgres:{PASSWORD}@:5432:x/db",
    # An unencoded @ ends the password early: the rest would be taken for the host.
    f"postgresql://postgres:Hun@{PASSWORD}@127.0.0.1/x",
    f"postgresql://postgres:@{PASSWORD}@127.0.0.1:5432/x",
    # argv that is not UTF-8 arrives with lone surrogates (surrogateescape).
    f"postgresql://postgres:{PASSWORD}@\udcff/x",
]


def _texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), repr(pickle.dumps(error)), repr(error.args)]
    texts += [repr(vars(error))]
    return texts


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_invalid_config_errors_never_show_the_password(
    open_store: Callable[..., None], url: str
) -> None:
    with pytest.raises(InvalidConfigError) as caught:
        open_store(url, timeout=2)
    error = caught.value
    # No chained psycopg error holding the URL either.
    assert error.__cause__ is None and error.__context__ is None
    leaks = [text for text in _texts(error) if any(part in text for part in PASSWORD_PARTS)]
    assert not leaks, leaks
    assert url not in str(error)


@pytest.mark.parametrize("scheme", ["memory", "sqlite"])
def test_async_stores_use_the_memo_too(tmp_path: Path, scheme: str) -> None:
    url = "memory://" if scheme == "memory" else f"sqlite:///{tmp_path / 'a.db'}"
    snapshot = SessionData(entries=[Entry("e0", payload={"k": 1})], leaf_id="e0")

    async def main() -> None:
        async with await eventlog.connect_async(url) as store:
            await store.save("s", snapshot)
            memo = store._snapshot_memo  # type: ignore[attr-defined]
            assert memo is not None and memo.encodings("s") is not None
            await store.delete("s")
            assert memo.encodings("s") is None  # a delete forgets the payloads

    asyncio.run(main())


@pytest.mark.parametrize("scheme", ["memory", "sqlite"])
def test_snapshot_memo_bytes_sizes_what_the_store_remembers(tmp_path: Path, scheme: str) -> None:
    url = "memory://" if scheme == "memory" else f"sqlite:///{tmp_path / 'm.db'}"
    entries = [Entry(f"e{i}", payload={"text": "x" * 100}) for i in range(20)]
    snapshot = SessionData(entries=entries, leaf_id="e19")
    loads = []
    for size, remembers in ((0, False), (100, False), (1 << 20, True)):
        with eventlog.connect(url, snapshot_memo_bytes=size) as store:
            session = f"s{size}"
            store.save(session, snapshot)
            memo = store._snapshot_memo  # type: ignore[attr-defined]
            assert (memo is not None and memo.encodings(session) is not None) == remembers
            store.save(session, snapshot)  # the same answer with or without the memo
            loads.append(store.load(session))
    assert all(data is not None and data.entries == entries for data in loads)


@pytest.mark.parametrize(
    ("runner", "class_name"), [("threads", "AsyncPostgresStore"), ("loop", "HomeLoopPostgresStore")]
)
def test_async_runner_picks_the_async_postgres_store(
    pg_url: str, runner: str, class_name: str
) -> None:
    url = pgserver.with_search_path(pg_url, pgserver.make_schema(f"runner_{runner}"))

    async def main() -> str:
        async with await eventlog.connect_async(url, async_runner=runner) as store:
            await store.save_delta("s", SessionDelta([Entry("a")]))
            return type(store).__name__

    assert asyncio.run(main()) == class_name


@pytest.mark.parametrize("value", ["thread", "", None, 1, "LOOP"])
def test_a_bad_async_runner_is_invalid_config(pg_url: str, value: object) -> None:
    with pytest.raises(InvalidConfigError, match="async_runner"):
        _open_async(pg_url, async_runner=value)


def test_the_sync_store_takes_no_async_runner(pg_url: str) -> None:
    with pytest.raises(InvalidConfigError):
        _open_sync(pg_url, async_runner="threads")
