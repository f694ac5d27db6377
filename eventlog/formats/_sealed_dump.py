"""A sealed eventlog dump (format 2): every line after the header sealed (DESIGN.md section 8).

A dump of a session from a store with a keyring stays sealed at rest: the
header names a fresh random *dump key* (32 bytes) wrapped by the keyring's
active key, the way a session's data key is stored (``data_key``: base64 of the
key id and the wrapped bytes; the wrap context binds ``"eventlog.dump.v2"`` and
the dumped session's id). Each following line is the plain dump's line (format
1) sealed with AES-256-GCM under a key derived from the dump key, written as
``{"sealed": "<base64 of nonce + ciphertext + tag>"}``, and its associated data
binds the line's number and a BLAKE2b digest of the header line exactly as
written: a line moved, dropped, copied from another dump, or a changed header
(its version, first version or session id) does not open. A dump cut short
opens line by line and then fails the dump's own check that every version is
present. Restoring opens the lines in memory with the keyring and writes them
through the store, which seals them again under the new session's own data key.

What stays readable in a sealed dump: the header (session id, versions,
timestamps, fork parent, the wrapping key's id) and the number and lengths of
the lines; entry ids, kinds, timestamps, payloads and metadata are sealed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterator
from typing import Final

import msgspec

from .._core.sealing import unwrap_data_key, wrap_data_key
from ..errors import DecryptionError
from ..keyring import KEY_BYTES, KeyProvider, aesgcm

__all__ = ["SEALED_DUMP_FORMAT", "DumpSealer", "new_dump_key", "open_dump_key"]

SEALED_DUMP_FORMAT: Final = 2
_NONCE_BYTES: Final = 12
_CONTEXT: Final = b"eventlog.dump.v2\x00"


class _SealedLine(msgspec.Struct, forbid_unknown_fields=True):
    sealed: str


_line_encoder = msgspec.json.Encoder()
_line_decoder = msgspec.json.Decoder(_SealedLine)


class DumpSealer:
    """Seals (or opens) the lines of one dump, after its header line."""

    __slots__ = ("_cipher", "_header_digest", "session_id")

    def __init__(self, root: bytes, *, session_id: str) -> None:
        self._cipher = aesgcm(
            hashlib.blake2b(key=root, person=b"eventlog.v2.dump", digest_size=KEY_BYTES).digest()
        )
        self._header_digest = b""
        self.session_id = session_id

    def __repr__(self) -> str:
        return f"<DumpSealer session_id={self.session_id!r}>"

    def bind_header(self, header_line: bytes) -> None:
        """Bind every line to the header as written (its bytes, without the line break)."""
        self._header_digest = hashlib.blake2b(header_line, digest_size=32).digest()

    def _ad(self, number: int) -> bytes:
        return _CONTEXT + self._header_digest + number.to_bytes(8, "big")

    def seal_line(self, number: int, line: bytes) -> bytes:
        """Line `number` (1-based in the file) as written: ``{"sealed": ...}``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._cipher.encrypt(nonce, line, self._ad(number))
        return _line_encoder.encode(_SealedLine(base64.b64encode(sealed).decode("ascii")))

    def open_line(self, number: int, line: bytes, *, path: str) -> bytes:
        """The plain dump line that sealed line `number` holds.

        Raises:
            DecryptionError: it is not a sealed line, or it does not open here
                (wrong key, or the line or the header changed, moved or was copied).
        """
        from cryptography.exceptions import InvalidTag

        try:
            blob = base64.b64decode(_line_decoder.decode(line).sealed, validate=True)
            return self._cipher.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], self._ad(number))
        except (InvalidTag, ValueError, binascii.Error, msgspec.DecodeError):
            pass
        raise DecryptionError(
            "a sealed dump line does not open: wrong key, or the dump changed",
            session_id=self.session_id,
            where=f"{path}:{number}",
        )

    def open_lines(
        self, lines: Iterator[tuple[int, bytes]], *, path: str
    ) -> Iterator[tuple[int, bytes]]:
        """The numbered lines after the header, opened."""
        for number, line in lines:
            yield number, self.open_line(number, line, path=path)


def _context(session_id: str) -> bytes:
    return _CONTEXT + session_id.encode("utf-8", "surrogatepass")


def new_dump_key(provider: KeyProvider, *, session_id: str) -> tuple[DumpSealer, str]:
    """A fresh dump key: its sealer and the header's ``data_key`` (base64 of the wrapped key).

    Raises:
        KeyProviderError: the provider failed or did not answer with a wrapped key.
    """
    root = os.urandom(KEY_BYTES)
    stored = wrap_data_key(provider, root, context=_context(session_id), session_id=session_id)
    return DumpSealer(root, session_id=session_id), base64.b64encode(stored).decode("ascii")


def open_dump_key(
    provider: KeyProvider | None, data_key: str, *, session_id: str, path: str
) -> DumpSealer:
    """The sealer of a sealed dump, from its header's ``data_key``.

    Raises:
        DecryptionError: no keyring, a damaged key, or the keyring cannot unwrap it.
        KeyProviderError: the provider failed otherwise.
    """
    if provider is None:
        raise DecryptionError(
            "the dump is sealed: restoring it needs the keyring it was written with",
            session_id=session_id,
            where=f"{path}:1",
        )
    try:
        stored = base64.b64decode(data_key, validate=True)
    except (ValueError, binascii.Error):
        raise DecryptionError(
            "the sealed dump's data key is damaged", session_id=session_id, where=f"{path}:1"
        ) from None
    root = unwrap_data_key(provider, stored, context=_context(session_id), session_id=session_id)
    return DumpSealer(root, session_id=session_id)
