"""Sealing: payloads and metadata encrypted in the client (DESIGN.md section 8), free of IO.

A sealed session has a root key (32 random bytes), stored wrapped by the
keyring's active key in the session's index row (`SessionState.data_key`).
From the root, keyed BLAKE2b derives:

- the AES-256-GCM keys that seal entries and metadata, one per *generation*
  of 2**31 seals: a payload sealed at log position `seq` uses generation
  ``seq >> 31``, metadata written at `version` uses ``version >> 31``. Every
  stored seal has its own position (or version), so no derived key ever holds
  more than 2**31 ciphertexts, half NIST SP 800-38D's limit of 2**32
  invocations per key with random 96-bit nonces; the data key rotates before it.
- the digest key: content identity (idempotent retries, `save`'s compare) uses
  a keyed digest of the plaintext's digest, so the stored digest tells nothing
  to someone without the key, and random nonces do not change it.

A sealed value is ``00 01 <generation: 4 bytes> <nonce: 12 bytes> <ciphertext + tag>``;
the leading NUL marks it (a JSON object never starts with one). The associated
data binds tenant, session, entry id, kind and the format version, so a
ciphertext copied to another row, session or tenant does not open.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import msgspec

from ..errors import DecryptionError, EventlogError, KeyProviderError
from ..keyring import KEY_BYTES, KeyProvider, WrappedKey, aesgcm
from .codec import EncodedEntry, PreparedDelta, PreparedSnapshot, content_digest
from .planning import WritePlan
from .records import LogSlice, Record, SessionState

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "FORMAT_VERSION",
    "GENERATION_SEALS",
    "SEAL_OVERHEAD",
    "Sealer",
    "SessionCipher",
    "is_sealed",
    "open_log",
    "open_records",
    "open_state",
    "require_open",
]

FORMAT_VERSION: Final = 1
_MARK: Final = b"\x00"
_PREFIX: Final = _MARK + bytes([FORMAT_VERSION])
_NONCE_BYTES: Final = 12
_HEADER_BYTES: Final = 2 + 4 + _NONCE_BYTES
SEAL_OVERHEAD: Final = _HEADER_BYTES + 16
"""Bytes a sealed value has beyond its plaintext: header and GCM tag."""
GENERATION_SEALS: Final = 2**31
"""Seals one derived key holds at most (see the module docstring)."""
_GENERATION_SHIFT: Final = 31
_KEY_FORMAT: Final = 1
_MAX_KEY_ID_BYTES: Final = 255
EntryRow: TypeAlias = tuple[Any, ...]
"""``(entry_id, parent_id, kind, timestamp, payload)``, as a load reads live entries."""
_CACHED_CIPHERS: Final = 1024


def is_sealed(value: bytes) -> bool:
    """Whether stored bytes are shaped as a sealed value (not a plain JSON object).

    Anything else (other bytes, a SQLite cell edited to hold another type) is
    not: it is damage, which decoding reports as such.
    """
    return isinstance(value, bytes) and len(value) >= SEAL_OVERHEAD and value[:2] == _PREFIX


def _cannot_open(session_id: str, entry_id: str | None = None) -> DecryptionError:
    what = "payload" if entry_id is not None else "metadata"
    return DecryptionError(
        f"the sealed {what} does not open: wrong or missing key, or the stored bytes changed",
        session_id=session_id,
        entry_id=entry_id,
    )


class SessionCipher:
    """Seals and opens one session's payloads and metadata, and keys its digests."""

    __slots__ = ("_ad", "_ciphers", "_digest_key", "_root", "session_id")

    def __init__(self, root: bytes, *, tenant: str, session_id: str) -> None:
        self._root = root
        self.session_id = session_id
        self._ad = b"eventlog\x00%d\x00%s\x00%s\x00" % (
            FORMAT_VERSION,
            tenant.encode(),
            session_id.encode(),
        )
        self._ciphers: dict[tuple[bytes, int], AESGCM] = {}
        self._digest_key = self._derive(b"digest", 0)

    def __repr__(self) -> str:
        return f"<SessionCipher session_id={self.session_id!r}>"

    def _derive(self, purpose: bytes, generation: int) -> bytes:
        return hashlib.blake2b(
            generation.to_bytes(4, "big"),
            key=self._root,
            person=b"eventlog.v1." + purpose[:4],
            digest_size=KEY_BYTES,
        ).digest()

    def _cipher(self, family: bytes, generation: int) -> AESGCM:
        cipher = self._ciphers.get((family, generation))
        if cipher is None:
            cipher = self._ciphers[(family, generation)] = aesgcm(self._derive(family, generation))
        return cipher

    def digest(self, plain_digest: bytes) -> bytes:
        """The stored digest of content whose plain digest is `plain_digest`."""
        return hashlib.blake2b(plain_digest, key=self._digest_key, digest_size=16).digest()

    def _seal(self, family: bytes, position: int, plaintext: bytes, ad: bytes) -> bytes:
        generation = position >> _GENERATION_SHIFT
        nonce = os.urandom(_NONCE_BYTES)
        header = b"%s%c%s%s" % (_MARK, FORMAT_VERSION, generation.to_bytes(4, "big"), nonce)
        return header + self._cipher(family, generation).encrypt(nonce, plaintext, ad)

    def _open(self, family: bytes, sealed: bytes, ad: bytes) -> bytes | None:
        if len(sealed) < SEAL_OVERHEAD or sealed[:2] != _PREFIX:
            return None
        generation = int.from_bytes(sealed[2:6], "big")
        try:
            return self._cipher(family, generation).decrypt(
                sealed[6:_HEADER_BYTES], sealed[_HEADER_BYTES:], ad
            )
        except _invalid_tag():
            return None

    def _entry_ad(self, entry_id: str, kind: str) -> bytes:
        return self._ad + b"e\x00" + entry_id.encode() + b"\x00" + kind.encode()

    def seal_payload(self, entry_id: str, kind: str, seq: int, payload: bytes) -> bytes:
        """The stored form of an entry's payload, written at log position `seq`."""
        return self._seal(b"entr", seq, payload, self._entry_ad(entry_id, kind))

    def open_payload(self, entry_id: str, kind: str, sealed: bytes) -> bytes:
        """The payload a stored value holds.

        Raises:
            DecryptionError: it does not open (naming the session and entry).
        """
        opened = self._open(b"entr", sealed, self._entry_ad(entry_id, kind))
        if opened is None:
            raise _cannot_open(self.session_id, entry_id)
        return opened

    def seal_metadata(self, version: int, metadata: bytes) -> bytes:
        """The stored form of metadata written at `version`."""
        return self._seal(b"meta", version, metadata, self._ad + b"m")

    def open_metadata(self, sealed: bytes) -> bytes:
        """The metadata a stored value holds.

        Raises:
            DecryptionError: it does not open (naming the session).
        """
        opened = self._open(b"meta", sealed, self._ad + b"m")
        if opened is None:
            raise _cannot_open(self.session_id)
        return opened

    # -- writes ---------------------------------------------------------------

    def key_entries(self, entries: Sequence[EncodedEntry]) -> list[EncodedEntry]:
        """Entries whose digests are this session's keyed digests, as stored."""
        replace = msgspec.structs.replace
        return [replace(entry, digest=self.digest(entry.digest)) for entry in entries]

    def key_delta(self, delta: PreparedDelta) -> PreparedDelta:
        """`delta` with keyed digests (see `key_entries`)."""
        return msgspec.structs.replace(delta, new_entries=self.key_entries(delta.new_entries))

    def key_snapshot(self, snapshot: PreparedSnapshot) -> PreparedSnapshot:
        """`snapshot` with keyed digests (see `key_entries`)."""
        return msgspec.structs.replace(snapshot, entries=self.key_entries(snapshot.entries))

    def seal_plan(
        self, plan: WritePlan, *, data_key: bytes, stored_metadata: bytes | None
    ) -> WritePlan:
        """The plan as stored: payloads and changed metadata sealed, the data key set.

        `stored_metadata` is the index row's metadata as read (sealed), kept
        where the plan does not change it; `plan` was made on opened values.
        """
        replace = msgspec.structs.replace
        appends = [
            replace(r, payload=self.seal_payload(r.entry_id, r.kind, r.seq, r.payload))
            for r in plan.appends
        ]
        state = plan.state
        if plan.metadata_changed or stored_metadata is None:
            metadata = self.seal_metadata(state.version, state.metadata)
        else:
            metadata = stored_metadata
        return replace(
            plan,
            appends=appends,
            state=replace(state, metadata=metadata, data_key=data_key),
        )

    def reseal_copies(self, plan: WritePlan, *, data_key: bytes) -> WritePlan:
        """A fork's plan, records copied from another session, sealed for this one.

        Each digest is made again from the copied plaintext: the source's keyed
        digests are keyed for the source.
        """
        replace = msgspec.structs.replace
        keyed = [
            replace(
                r, digest=self.digest(content_digest(r.parent_id, r.kind, r.timestamp, r.payload))
            )
            for r in plan.appends
        ]
        return self.seal_plan(replace(plan, appends=keyed), data_key=data_key, stored_metadata=None)

    # -- reads ----------------------------------------------------------------

    def open_records(self, records: Sequence[Record]) -> list[Record]:
        """Records with opened payloads (an empty payload, from a digest-only read, stays)."""
        replace = msgspec.structs.replace
        opened = self._open_payloads((r.entry_id, r.kind, r.payload) for r in records)
        return [
            replace(r, payload=payload) if r.payload else r
            for r, payload in zip(records, opened, strict=True)
        ]

    def open_rows(self, rows: Iterable[EntryRow]) -> list[EntryRow]:
        """``(entry_id, parent_id, kind, timestamp, payload)`` rows with payloads opened.

        The hot loop of a sealed load, so it does per row only what opening needs:
        one slice to check the header, the associated data, the `decrypt` call and
        the row tuple (a profile of the earlier loop spent about as much again on
        generator and ``zip`` steps, header slices and rebuilding each tuple).

        Raises:
            DecryptionError: a payload does not open (naming its entry).
        """
        head: bytes | None = None  # the header (mark, version, generation) in hand
        decrypt: Any = None
        prefix = self._ad + b"e\x00"
        kinds: dict[str, bytes] = {}
        opened: list[EntryRow] = []
        append = opened.append
        entry_id = None
        try:
            for entry_id, parent_id, kind, timestamp, sealed in rows:
                if sealed[:6] != head:
                    head, decrypt = self._header_cipher(sealed)
                ad_kind = kinds.get(kind)
                if ad_kind is None:
                    ad_kind = kinds[kind] = b"\x00" + kind.encode()
                append(
                    (
                        entry_id,
                        parent_id,
                        kind,
                        timestamp,
                        decrypt(sealed[6:18], sealed[18:], prefix + entry_id.encode() + ad_kind),
                    )
                )
        except (_invalid_tag(), AttributeError, TypeError, ValueError):
            raise _cannot_open(self.session_id, entry_id) from None
        return opened

    def _header_cipher(self, sealed: bytes) -> tuple[bytes, Any]:
        """A sealed payload's header and the `decrypt` of its generation's cipher.

        Raises:
            ValueError: the value is not shaped as a sealed one.
        """
        if len(sealed) < SEAL_OVERHEAD or sealed[:2] != _PREFIX:
            raise ValueError
        head = bytes(sealed[:6])
        return head, self._cipher(b"entr", int.from_bytes(head[2:6], "big")).decrypt

    def _open_payloads(self, sealed_payloads: Iterable[tuple[str, str, bytes]]) -> list[bytes]:
        """The opened payload of each ``(entry_id, kind, sealed)`` (an empty one, from
        a digest-only read, stays empty); each generation's cipher is looked up once,
        as in `open_rows`.

        Raises:
            DecryptionError: a payload does not open (naming its entry).
        """
        head: bytes | None = None
        decrypt: Any = None
        prefix = self._ad + b"e\x00"
        kinds: dict[str, bytes] = {}
        opened: list[bytes] = []
        append = opened.append
        entry_id = None
        try:
            for entry_id, kind, sealed in sealed_payloads:
                if not sealed:
                    append(sealed)
                    continue
                if sealed[:6] != head:
                    head, decrypt = self._header_cipher(sealed)
                ad_kind = kinds.get(kind)
                if ad_kind is None:
                    ad_kind = kinds[kind] = b"\x00" + kind.encode()
                append(decrypt(sealed[6:18], sealed[18:], prefix + entry_id.encode() + ad_kind))
        except (_invalid_tag(), AttributeError, TypeError, ValueError):
            raise _cannot_open(self.session_id, entry_id) from None
        return opened


_INVALID_TAG: list[type[Exception]] = []


def _invalid_tag() -> type[Exception]:
    """`cryptography`'s InvalidTag, imported once on first use."""
    if not _INVALID_TAG:
        from cryptography.exceptions import InvalidTag

        _INVALID_TAG.append(InvalidTag)
    return _INVALID_TAG[0]


def _context(tenant: str, session_id: str) -> bytes:
    return b"%s\x00%s" % (tenant.encode(), session_id.encode())


def _encode_data_key(wrapped: WrappedKey) -> bytes:
    key_id = wrapped.key_id.encode()
    return bytes([_KEY_FORMAT, len(key_id)]) + key_id + wrapped.wrapped


def decode_data_key(stored: bytes, *, session_id: str) -> WrappedKey:
    """The wrapped key a stored `data_key` value holds.

    Raises:
        DecryptionError: the value is not one this format knows.
    """
    if len(stored) < 2 or stored[0] != _KEY_FORMAT or len(stored) < 2 + stored[1]:
        raise DecryptionError("the stored data key is damaged", session_id=session_id)
    try:
        key_id = stored[2 : 2 + stored[1]].decode()
    except UnicodeDecodeError:
        raise DecryptionError("the stored data key is damaged", session_id=session_id) from None
    return WrappedKey(key_id, stored[2 + stored[1] :])


class Sealer:
    """A store's sealing: its key provider and tenant, and the data keys it opened.

    Opened data keys are kept (at most 1024 sessions), so a KMS is asked once
    per session, not once per call.
    """

    __slots__ = ("_opened", "provider", "tenant")

    def __init__(self, provider: KeyProvider, *, tenant: str) -> None:
        self.provider = provider
        self.tenant = tenant
        self._opened: OrderedDict[tuple[str, bytes], SessionCipher] = OrderedDict()

    def __repr__(self) -> str:
        return f"<Sealer tenant={self.tenant!r}>"

    def new_session(self, session_id: str) -> tuple[SessionCipher, bytes]:
        """A fresh data key for a new session: its cipher and the key as stored (wrapped).

        Raises:
            KeyProviderError: the provider failed or answered with something
                that is not a wrapped key.
        """
        root = os.urandom(KEY_BYTES)
        stored = self._wrap(session_id, root)
        return SessionCipher(root, tenant=self.tenant, session_id=session_id), stored

    def cipher(self, session_id: str, data_key: bytes) -> SessionCipher:
        """The cipher of a sealed session, from its stored data key.

        Raises:
            DecryptionError: the provider cannot unwrap it (unknown key id, wrong key).
            KeyProviderError: the provider failed otherwise (unreachable, access
                denied) or answered with something that is not a data key.
        """
        found = self._opened.get((session_id, data_key))
        if found is not None:
            return found
        root = self._unwrap(session_id, data_key)
        cipher = SessionCipher(root, tenant=self.tenant, session_id=session_id)
        self._opened[(session_id, data_key)] = cipher
        while len(self._opened) > _CACHED_CIPHERS:
            self._opened.popitem(last=False)
        return cipher

    def rewrap(self, session_id: str, data_key: bytes) -> bytes | None:
        """The data key wrapped by the active key; None if it already is.

        Raises:
            DecryptionError: the provider cannot unwrap it.
            KeyProviderError: the provider failed otherwise.
        """
        wrapped = decode_data_key(data_key, session_id=session_id)
        try:
            active = self.provider.active_key_id
        except Exception as error:
            raise _provider_failed(error, session_id) from error
        if wrapped.key_id == active:
            return None
        return self._wrap(session_id, self._unwrap(session_id, data_key))

    def _wrap(self, session_id: str, root: bytes) -> bytes:
        context = _context(self.tenant, session_id)
        return wrap_data_key(self.provider, root, context=context, session_id=session_id)

    def _unwrap(self, session_id: str, stored: bytes) -> bytes:
        context = _context(self.tenant, session_id)
        return unwrap_data_key(self.provider, stored, context=context, session_id=session_id)


# A provider is someone else's code talking to a KMS: whatever it raises (a
# network error, access denied) becomes a KeyProviderError naming only the
# exception's type, and whatever it returns is checked before it is used.


def wrap_data_key(provider: KeyProvider, root: bytes, *, context: bytes, session_id: str) -> bytes:
    """`root` wrapped by the provider's active key, in its stored form.

    Raises:
        KeyProviderError: the provider failed or did not answer with a `WrappedKey`.
    """
    try:
        wrapped = provider.wrap(root, context=context)
    except EventlogError:
        raise
    except Exception as error:
        raise _provider_failed(error, session_id) from error
    if (
        not isinstance(wrapped, tuple)
        or len(wrapped) != 2
        or not isinstance(wrapped[0], str)
        or not 1 <= len(wrapped[0].encode("utf-8", "surrogatepass")) <= _MAX_KEY_ID_BYTES
        or not isinstance(wrapped[1], bytes)
    ):
        raise KeyProviderError(
            "the key provider's wrap returned something that is not a WrappedKey",
            session_id=session_id,
        )
    return _encode_data_key(WrappedKey(*wrapped))


def unwrap_data_key(
    provider: KeyProvider, stored: bytes, *, context: bytes, session_id: str
) -> bytes:
    """The key a stored (wrapped) data key holds.

    Raises:
        DecryptionError: the stored form is damaged, or the provider cannot unwrap
            it (unknown key id, wrong key, another context).
        KeyProviderError: the provider failed otherwise, or did not answer with a key.
    """
    wrapped = decode_data_key(stored, session_id=session_id)
    try:
        root = provider.unwrap(wrapped, context=context)
    except EventlogError as error:
        raise DecryptionError(error.message, session_id=session_id) from None
    except Exception as error:
        raise _provider_failed(error, session_id) from error
    if not isinstance(root, bytes) or len(root) != KEY_BYTES:
        raise KeyProviderError(
            f"the key provider's unwrap returned something that is not {KEY_BYTES} bytes",
            session_id=session_id,
        )
    return root


def _provider_failed(error: Exception, session_id: str) -> KeyProviderError:
    name = type(error).__name__
    return KeyProviderError(
        f"the key provider failed ({name}); the store is unchanged",
        session_id=session_id,
        code=name,
    )


def open_state(
    sealer: Sealer | None, state: SessionState
) -> tuple[SessionCipher | None, SessionState]:
    """A session's cipher (None: a plain session) and its index row with metadata opened.

    Raises:
        DecryptionError: the session is sealed and the store has no keyring, or
            its data key or metadata does not open.
    """
    if state.data_key is None:
        return None, state
    cipher = require_open(sealer, state)
    return cipher, msgspec.structs.replace(state, metadata=cipher.open_metadata(state.metadata))


def require_open(sealer: Sealer | None, state: SessionState) -> SessionCipher:
    """The cipher of a sealed session.

    Raises:
        DecryptionError: the store has no keyring, or the data key does not open.
    """
    assert state.data_key is not None
    if sealer is None:
        raise DecryptionError(
            "the session is sealed and this store has no keyring", session_id=state.session_id
        )
    return sealer.cipher(state.session_id, state.data_key)


def open_records(cipher: SessionCipher | None, records: Sequence[Record]) -> Sequence[Record]:
    """Records of a session with payloads opened (a plain session's are returned as they are)."""
    return records if cipher is None else cipher.open_records(records)


def open_log(cipher: SessionCipher | None, log: LogSlice) -> LogSlice:
    """A change-feed slice with payloads and metadata opened."""
    if cipher is None:
        return log
    replace = msgspec.structs.replace
    versions = [
        v if v.metadata is None else replace(v, metadata=cipher.open_metadata(v.metadata))
        for v in log.versions
    ]
    return replace(log, added=cipher.open_records(log.added), versions=versions)


def refuse_sealed(session_id: str, records: Sequence[Record]) -> None:
    """For a store without keyring: a sealed record among `records` is a `DecryptionError`."""
    for record in records:
        if is_sealed(record.payload):
            raise DecryptionError(
                "the session is sealed and this store has no keyring",
                session_id=session_id,
                entry_id=record.entry_id,
            )
