"""The last snapshot a store prepared for a session, in order, so that the next
`save` takes the entries it starts with as known in a few whole-list passes
made in C, not entry by entry (see `_core.snapshot_memo`).

The leading entries of a snapshot are the remembered ones, unchanged, exactly
when what `codec._known_entry` asks of one entry holds for each of them: it is
an `Entry` (not a subclass); its id, parent id, kind and timestamp equal the
remembered ones and are `str` or None (not subclasses, whose `==` may say
anything); its payload is a `dict` (not a subclass) that encodes to the
remembered bytes and equals the remembered decoded value (so `True` vs `1`,
`1.0` vs `1` or key order, which change the bytes, and NaN, tuples or int keys,
which msgspec writes like null, arrays or string keys, are never taken for
unchanged). Anything else answers 0, and the entries are looked at one by one.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ..model import Entry

if TYPE_CHECKING:
    from .codec import EncodedEntry, KnownEncoding

__all__ = ["KnownSnapshot", "known_prefix", "remember_snapshot"]

_encode: Final = msgspec.json.Encoder().encode
_header: Final = operator.attrgetter("id", "parent_id", "kind", "timestamp")
_payload: Final = operator.attrgetter("payload")
_encoded: Final = operator.attrgetter("encoded")
_decoded: Final = operator.attrgetter("decoded")
_HEADER_TYPES: Final = frozenset({str, type(None)})
_ENTRY_TYPE: Final = {Entry}
_DICT_TYPE: Final = {dict}


class KnownSnapshot(msgspec.Struct, frozen=True):
    """A prepared snapshot's unique entries, by id and in order, with what the
    next save compares them by. Never changed once made (stores share it
    between threads).

    `plain`: every payload was a dict with its decoded value kept, the only
    case `known_prefix` answers for. `prefix`: how many leading entries were
    taken whole from the known snapshot this one grew from (0: none).
    """

    by_id: dict[str, KnownEncoding]
    encoded: list[EncodedEntry]
    headers: list[tuple[str, str | None, str, str | None]]
    payloads: list[bytes]
    decoded: list[Any]
    plain: bool
    size: int
    prefix: int = 0


def known_prefix(entries: Sequence[object], known: KnownSnapshot) -> int:
    """How many leading `entries` are `known`'s entries, unchanged and in
    order: all of `known`'s, or 0. Never raises."""
    count = len(known.encoded)
    if not known.plain or count == 0 or len(entries) < count:
        return 0
    head = entries[:count]
    if set(map(type, head)) != _ENTRY_TYPE:
        return 0
    headers = list(map(_header, head))
    if not _HEADER_TYPES.issuperset(map(type, itertools.chain.from_iterable(headers))):
        return 0
    payloads = list(map(_payload, head))
    if set(map(type, payloads)) != _DICT_TYPE:
        return 0
    try:
        # Our values on the left: every `==` below starts with our own objects.
        same = (
            known.headers == headers
            and known.payloads == list(map(_encode, payloads))
            and known.decoded == payloads
        )
    except Exception:  # a value that does not encode or compare: the careful path says why
        return 0
    return count if same else 0


def remember_snapshot(
    by_id: dict[str, KnownEncoding], *, after: KnownSnapshot | None
) -> KnownSnapshot:
    """What the next save compares with, for a snapshot whose unique entries
    are `by_id`; `after`: the known snapshot its entries start with (then
    only the entries after it are looked at)."""
    start = 0 if after is None else len(after.encoded)
    added = list(itertools.islice(by_id.values(), start, None))
    encoded = list(map(_encoded, added))
    decoded = list(map(_decoded, added))
    headers = [(e.id, e.parent_id, e.kind, e.timestamp) for e in encoded]
    payloads = list(map(_payload, encoded))
    plain = set(map(type, decoded)) <= _DICT_TYPE
    size = sum(map(len, payloads))
    if after is not None:
        encoded = after.encoded + encoded
        decoded = after.decoded + decoded
        headers = after.headers + headers
        payloads = after.payloads + payloads
        plain = plain and after.plain
        size += after.size
    return KnownSnapshot(by_id, encoded, headers, payloads, decoded, plain, size, start)
