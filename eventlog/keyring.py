"""Keys for encryption at rest (DESIGN.md section 8): `Keyring` and the `KeyProvider` protocol.

A sealed session's payloads and metadata are encrypted under its own data key
(random, 32 bytes). The data key is stored wrapped (encrypted) by a key
encryption key that never reaches the database: a `Keyring` key, or a KMS
behind a `KeyProvider`. The wrapped key is stored with the wrapping key's id,
so keys rotate: new data keys are wrapped by the active key, and a key id
stays readable while its key is in the keyring (`eventlog rekey` rewraps every
data key under the active key, after which an old key can be removed).

Keys never appear in a repr, an error or a log line. AES-256-GCM comes from the
`cryptography` package (``pip install 'eventlog[crypto]'``).
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast, runtime_checkable

from .errors import DecryptionError, InvalidConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEY_BYTES", "KeyProvider", "Keyring", "WrappedKey", "aesgcm", "check_keyring"]

KEY_BYTES = 32
"""Every key is 32 bytes: AES-256."""
_NONCE_BYTES = 12
_MAX_KEY_ID_BYTES = 255


class WrappedKey(NamedTuple):
    """A data key as stored: the id of the key that wrapped it, and the wrapped bytes."""

    key_id: str
    wrapped: bytes


@runtime_checkable
class KeyProvider(Protocol):
    """What wraps and unwraps data keys: a `Keyring`, or a KMS client.

    `context` names what the data key protects (tenant and session); a provider
    must bind it (AES-GCM associated data, a KMS encryption context), so a wrapped
    key copied to another session does not unwrap there.
    """

    @property
    def active_key_id(self) -> str:
        """The id of the key that wraps new data keys."""
        ...

    def wrap(self, data_key: bytes, *, context: bytes) -> WrappedKey:
        """Wrap a data key with the active key."""
        ...

    def unwrap(self, wrapped: WrappedKey, *, context: bytes) -> bytes:
        """The data key `wrapped` holds.

        Raises:
            DecryptionError: the key id is unknown here, or the bytes or the
                context do not match (never naming a key).
        """
        ...


def aesgcm(key: bytes) -> AESGCM:
    """An AES-256-GCM cipher for `key`; `cryptography` is imported on first use.

    Raises:
        InvalidConfigError: the `cryptography` package is not installed.
    """
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # the optional extra is missing
        raise InvalidConfigError(
            "encryption needs the cryptography package: pip install 'eventlog[crypto]'"
        ) from None
    return AESGCM(key)


def check_keyring(keyring: object) -> KeyProvider | None:
    """A store's `keyring` option: None, or something with a `KeyProvider`'s methods.

    Raises:
        InvalidConfigError: it is neither.
    """
    if keyring is None or isinstance(keyring, Keyring):
        return keyring
    # Not isinstance(keyring, KeyProvider): on Python 3.11 that reads the
    # `active_key_id` property, i.e. asks the KMS at connect time, and a KMS
    # that is down would raise its own error out of `connect`.
    missing = object()
    if all(
        inspect.getattr_static(keyring, name, missing) is not missing
        for name in ("active_key_id", "wrap", "unwrap")
    ):
        return cast(KeyProvider, keyring)
    raise InvalidConfigError(
        f"keyring must be an eventlog.Keyring or a KeyProvider, not {type(keyring).__name__}"
    )


def _check_key_id(key_id: object) -> str:
    if (
        not isinstance(key_id, str)
        or not 1 <= len(key_id.encode("utf-8", "surrogatepass")) <= _MAX_KEY_ID_BYTES
        or "\x00" in key_id
        or not key_id.isprintable()
    ):
        raise InvalidConfigError(
            f"a key id must be printable text of 1..{_MAX_KEY_ID_BYTES} UTF-8 bytes"
        )
    return key_id


class Keyring:
    """Key encryption keys by id, one of them active (a `KeyProvider`).

    Args:
        keys: key id -> 32 random bytes (``os.urandom(32)``).
        active: the id of the key that wraps new data keys.

    Raises:
        InvalidConfigError: no keys, a key that is not 32 bytes, a bad key id,
            `active` not among the ids, or `cryptography` missing.
    """

    __slots__ = ("_active", "_ciphers")

    def __init__(self, keys: Mapping[str, bytes], *, active: str) -> None:
        if not isinstance(keys, Mapping) or not keys:
            raise InvalidConfigError("a keyring needs at least one key")
        ciphers: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            _check_key_id(key_id)
            if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
                raise InvalidConfigError(f"key {key_id!r} must be {KEY_BYTES} bytes")
            ciphers[key_id] = aesgcm(bytes(key))
        if active not in ciphers:
            raise InvalidConfigError("the active key id is not one of the keyring's keys")
        self._active = active
        self._ciphers = ciphers

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Keyring:
        """Read a keyring file: ``{"active": "<id>", "keys": {"<id>": "<base64 of 32 bytes>"}}``.

        Raises:
            InvalidConfigError: the file cannot be read or is not of that shape
                (the message names the key id at fault, never key material).
        """
        try:
            document: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeError, ValueError):
            raise InvalidConfigError("the keyring file cannot be read as JSON") from None
        if (
            not isinstance(document, dict)
            or not isinstance(document.get("active"), str)
            or not isinstance(document.get("keys"), dict)
        ):
            raise InvalidConfigError(
                'a keyring file is {"active": "<id>", "keys": {"<id>": "<base64>"}}'
            )
        keys: dict[str, bytes] = {}
        for key_id, text in document["keys"].items():
            try:
                if not isinstance(text, str):
                    raise ValueError
                keys[key_id] = base64.b64decode(text, validate=True)
            except (ValueError, binascii.Error):
                raise InvalidConfigError(f"key {key_id!r} is not base64") from None
        return cls(keys, active=document["active"])

    @property
    def active_key_id(self) -> str:
        """The id of the key that wraps new data keys."""
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of every key in the keyring."""
        return tuple(self._ciphers)

    def wrap(self, data_key: bytes, *, context: bytes) -> WrappedKey:
        """Wrap a data key with the active key (AES-256-GCM, `context` as associated data)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._active].encrypt(
            nonce, data_key, _wrap_ad(self._active, context)
        )
        return WrappedKey(self._active, nonce + sealed)

    def unwrap(self, wrapped: WrappedKey, *, context: bytes) -> bytes:
        """The data key `wrapped` holds.

        Raises:
            DecryptionError: the key id is not in this keyring, or the bytes or
                the context do not match.
        """
        from cryptography.exceptions import InvalidTag

        cipher = self._ciphers.get(wrapped.key_id)
        if cipher is None:
            raise DecryptionError("the data key is wrapped by a key id this keyring lacks")
        blob = wrapped.wrapped
        try:
            return cipher.decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _wrap_ad(wrapped.key_id, context)
            )
        except (InvalidTag, ValueError):
            raise DecryptionError("the wrapped data key does not open with its key") from None

    def __repr__(self) -> str:
        return f"<Keyring active={self._active!r} key_ids={list(self._ciphers)!r}>"

    def __reduce__(self) -> Any:
        # Pickling would copy the keys into whatever holds the pickle.
        raise TypeError("a Keyring cannot be pickled")


def _wrap_ad(key_id: str, context: bytes) -> bytes:
    return b"eventlog.data-key.v1\x00" + key_id.encode("utf-8") + b"\x00" + context
