"""Every async class has the same public methods and signatures as its sync twin."""

from __future__ import annotations

import importlib
import inspect

import pytest

import eventlog

PAIRS = [
    ("eventlog.store", "Store", "AsyncStore"),
    ("eventlog.memory", "MemoryStore", "AsyncMemoryStore"),
    ("eventlog.sqlite", "SQLiteStore", "AsyncSQLiteStore"),
    ("eventlog.postgres", "PostgresStore", "AsyncPostgresStore"),
]
LIFECYCLE = {"__enter__": "__aenter__", "__exit__": "__aexit__"}
# Methods that return an iterator at once (an async iterator on the async twin),
# so bad arguments raise at the call rather than at the first step.
ITERATORS = {"watch"}


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    methods = {}
    for name, member in inspect.getmembers(cls, callable):
        if name.startswith("_") and name not in (*LIFECYCLE, *LIFECYCLE.values()):
            continue
        methods[LIFECYCLE.get(name, name)] = inspect.signature(member)
    return methods


@pytest.mark.parametrize(("module", "sync_name", "async_name"), PAIRS)
def test_async_twin_has_the_same_methods_and_signatures(
    module: str, sync_name: str, async_name: str
) -> None:
    loaded = importlib.import_module(module)
    sync_cls, async_cls = getattr(loaded, sync_name), getattr(loaded, async_name)
    sync_methods, async_methods = _public_methods(sync_cls), _public_methods(async_cls)
    for name in _public_methods(eventlog.Store):
        name = LIFECYCLE.get(name, name)
        assert name in async_methods, f"{async_name} lacks {name}"
        if name in LIFECYCLE.values():
            continue
        assert async_methods[name].parameters == sync_methods[name].parameters, name
        if name in ITERATORS:
            assert not inspect.iscoroutinefunction(getattr(async_cls, name)), name
            assert "AsyncIterator" in str(async_methods[name].return_annotation), name
            assert "Iterator" in str(sync_methods[name].return_annotation), name
            continue
        assert inspect.iscoroutinefunction(getattr(async_cls, name)), name
    # Sync-only extras are allowed only where a blocking call has no async use.
    assert set(sync_methods) - set(async_methods) <= {"migrate"}


def test_the_protocols_cover_the_same_operations() -> None:
    sync_names = {LIFECYCLE.get(n, n) for n in _public_methods(eventlog.Store)}
    assert sync_names == set(_public_methods(eventlog.AsyncStore))


@pytest.mark.parametrize(
    ("sync_name", "async_name"),
    [("StoreBase", "AsyncStoreBase"), ("LogStore", "AsyncLogStore"), ("drive", "drive")],
)
def test_the_generated_engine_mirrors_the_async_one(sync_name: str, async_name: str) -> None:
    sync_engine = importlib.import_module("eventlog._runner.runner")
    async_engine = importlib.import_module("eventlog._runner.runner_async")
    sync_obj, async_obj = getattr(sync_engine, sync_name), getattr(async_engine, async_name)
    if inspect.isfunction(sync_obj):
        assert inspect.signature(sync_obj).parameters.keys() == (
            inspect.signature(async_obj).parameters.keys()
        )
        assert inspect.iscoroutinefunction(async_obj)
        return
    # Named as the async twin names them, so `__enter__` meets `__aenter__`.
    sync_members = {LIFECYCLE.get(n, n) for n, _ in inspect.getmembers(sync_obj, callable)}
    assert sync_members == {n for n, _ in inspect.getmembers(async_obj, callable)}
