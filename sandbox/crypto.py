"""Field encryption at rest: PyNaCl SecretBox (XSalsa20-Poly1305), as PropOps does.

Encrypted values are strings ``enc:v1:<base64 nonce+ciphertext>`` — the version prefix lets a later key
or cipher coexist with old values. Decrypted values are cached by ciphertext (a ciphertext never changes
meaning), so reading the same record twice costs one dict lookup.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

import nacl.exceptions
import nacl.hash
import nacl.secret
import nacl.utils

from .storage import DATA_FILE

PREFIX = "enc:v1:"
KEY_FILE = "sandbox.key"
_CACHE_MAX = 500_000


class KeyError_(RuntimeError):
    """The key is unusable or does not open the data: a startup error, reported in one line."""


def parse_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyError_("PROPOPS_SANDBOX_KEY is not valid base64") from None
    if len(key) != nacl.secret.SecretBox.KEY_SIZE:
        raise KeyError_(f"PROPOPS_SANDBOX_KEY must be base64 of 32 bytes, got {len(key)} bytes")
    return key


def load_or_create_key(data_dir: Path | None, env_value: str | None) -> bytes:
    """PROPOPS_SANDBOX_KEY wins; else the data dir's key file (made once, mode 0600); else a fresh key."""
    if env_value:
        return parse_key(env_value)
    if data_dir is None:
        return nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)
    # The key is made before storage.open_database() creates the dir, so a new --data-dir (one that
    # does not exist yet) used to fail with "No such file or directory". Make it here first; a path
    # that exists but is not a directory is left for the "Not a directory" error below.
    if not data_dir.exists():
        data_dir.mkdir(parents=True)
    path = data_dir / KEY_FILE
    if path.exists():
        try:
            return parse_key(path.read_text())
        except KeyError_:  # parse_key's message names PROPOPS_SANDBOX_KEY; here the file is at fault
            raise KeyError_(f"{path} does not hold a key (base64 of 32 bytes)") from None
    if (data_dir / DATA_FILE).exists():
        # Data made with PROPOPS_SANDBOX_KEY (or whose key file was lost): a fresh key cannot open it, and
        # writing one used to leave a wrong sandbox.key behind that broke every later start.
        raise KeyError_(
            f"{data_dir} holds data but no {KEY_FILE}: set PROPOPS_SANDBOX_KEY to the key it was created with"
        )
    key = nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(key).decode() + "\n")
    return key


class Cipher:
    def __init__(self, key: bytes):
        self._box = nacl.secret.SecretBox(key)
        self._key = key
        self._plain: dict[str, str] = {}

    def encrypt(self, value: str) -> str:
        # Not cached here: seeding encrypts ~200,000 values at 100,000 jobs, most never read again.
        return PREFIX + base64.b64encode(self._box.encrypt(value.encode())).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._plain[token]
        except KeyError:
            pass
        if not token.startswith(PREFIX):
            raise ValueError("not an encrypted value")
        value = self._box.decrypt(base64.b64decode(token[len(PREFIX) :])).decode()
        if len(self._plain) < _CACHE_MAX:
            self._plain[token] = value
        return value

    def check(self, token: str) -> bool:
        """True when this key opens `token` (used to refuse a wrong key at startup)."""
        try:
            self._box.decrypt(base64.b64decode(token[len(PREFIX) :]))
        except (nacl.exceptions.CryptoError, ValueError, binascii.Error):
            return False
        return True

    def blind_index(self, value: str) -> str:
        """A keyed hash for exact-match lookups (login by e-mail) without storing the plaintext."""
        return nacl.hash.blake2b(value.strip().lower().encode(), key=self._key, digest_size=16).decode()
