"""The in-memory backend (`MemoryStore`, `AsyncMemoryStore`): the reference store."""

from ._memory import AsyncMemoryStore, MemoryStore

__all__ = ["AsyncMemoryStore", "MemoryStore"]
