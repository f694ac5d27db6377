"""The `Store` and `AsyncStore` protocols: the operations every backend offers.

`AsyncStore` is written by hand (`_store_async.py`), `Store` generated from it.
"""

from __future__ import annotations

from ._core.store_async import AsyncStore
from ._core.store_sync import Store

__all__ = ["AsyncStore", "Store"]
