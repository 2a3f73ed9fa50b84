"""API keys for the local service: names, hashes, scopes and rate limits.

``DATA_DIR/keys.json`` holds one entry per key. The secret is shown once, when
the key is created; only its SHA-256 is stored (a secret is 32 random bytes,
so a plain hash cannot be reversed by guessing). The file is re-read when it
changes, so a key created or revoked with ``docent keys`` while ``docent
serve`` runs takes effect at the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.core.paths import is_inside
from app.durable import atomic_write_text
from app.errors import StoreError, UsageError

#: What every secret starts with, so a leaked one is recognisable in a scan.
SECRET_PREFIX = "dk-"
ROLES = ("reader", "editor", "admin")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def hash_secret(secret: str) -> str:
    """The stored form of ``secret`` (SHA-256 hex)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """One key, as stored (never the secret itself).

    Attributes:
        scopes: the folders (absolute paths) its requests may read; empty
            means the whole library.
        rpm, tpm: requests and tokens per minute allowed (None: no limit).
        hint: the secret's first characters, to tell keys apart in a list.
    """

    name: str
    hash: str
    hint: str
    created: str
    scopes: tuple[str, ...] = ()
    role: str = "reader"
    rpm: int | None = None
    tpm: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def allows(self, path: str) -> bool:
        """Whether this key may read ``path`` (a file or folder)."""
        return not self.scopes or any(is_inside(path, s) for s in self.scopes)

    def to_json(self) -> dict[str, Any]:
        """The entry for ``docent keys list --json`` (no hash)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("hash", "extra")}
        out["scopes"] = list(self.scopes)
        return out


class KeyStore:
    """The keys of one data folder (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    # --- reading ----------------------------------------------------------

    def _fresh(self) -> dict[str, ApiKey]:
        """The keys on disk, re-read only when the file changed."""
        try:
            st = self.path.stat()
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        # File times are coarse (a few milliseconds): a file changed just now
        # is read again even when its stamp looks the same.
        recent = stamp is not None and time.time_ns() - stamp[1] < 2_000_000_000
        if stamp != self._stamp or stamp is None or recent:
            self._keys = self._read() if stamp is not None else {}
            self._stamp = stamp
        return self._keys

    def _read(self) -> dict[str, ApiKey]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"The API keys file {self.path} cannot be read ({exc}). Move it aside and create the keys "
                "again with `docent keys create NAME`."
            ) from exc
        keys: dict[str, ApiKey] = {}
        for entry in raw.get("keys", []):
            entry = dict(entry)
            entry["scopes"] = tuple(entry.get("scopes") or ())
            known = {f for f in ApiKey.__dataclass_fields__}
            extra = {k: v for k, v in entry.items() if k not in known}
            key = ApiKey(**{k: v for k, v in entry.items() if k in known})
            keys[key.name] = ApiKey(**{**asdict(key), "scopes": key.scopes, "extra": extra})
        return keys

    def list(self) -> list[ApiKey]:
        """Every key, oldest first."""
        with self._lock:
            return sorted(self._fresh().values(), key=lambda k: (k.created, k.name))

    def any(self) -> bool:
        """Whether at least one key exists."""
        with self._lock:
            return bool(self._fresh())

    def check(self, secret: str) -> ApiKey | None:
        """The key ``secret`` belongs to, or None (compared in constant time)."""
        digest = hash_secret(secret)
        with self._lock:
            keys = list(self._fresh().values())
        found = None
        for key in keys:  # every key compared, so the time does not tell which one was close
            if hmac.compare_digest(key.hash, digest):
                found = key
        return found

    # --- writing ------------------------------------------------------------

    def create(
        self, name: str, *, scopes: tuple[str, ...] = (), role: str = "reader",
        rpm: int | None = None, tpm: int | None = None,
    ) -> tuple[ApiKey, str]:
        """Make a new key; returns it and its secret (shown once, never stored)."""
        if not _NAME.match(name):
            raise UsageError(f"{name!r} cannot name a key: use letters, digits, '.', '_', '-' or '@' "
                             "(up to 64, starting with a letter or digit).")
        if role not in ROLES:
            raise UsageError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
        for label, value in (("--rpm", rpm), ("--tpm", tpm)):
            if value is not None and value < 1:
                raise UsageError(f"{label} must be at least 1.")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            keys = dict(self._fresh())
            if name in keys:
                raise UsageError(f"A key named {name} already exists; revoke it first "
                                 f"(`docent keys revoke {name}`) or choose another name.")
            key = ApiKey(name=name, hash=hash_secret(secret), hint=secret[:len(SECRET_PREFIX) + 4],
                         created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         scopes=tuple(scopes), role=role, rpm=rpm, tpm=tpm)
            keys[name] = key
            self._write(keys)
        return key, secret

    def revoke(self, name: str) -> bool:
        """Delete the key ``name``; False when there is none."""
        with self._lock:
            keys = dict(self._fresh())
            if keys.pop(name, None) is None:
                return False
            self._write(keys)
        return True

    def _write(self, keys: dict[str, ApiKey]) -> None:
        entries = []
        for key in keys.values():
            entry = {k: v for k, v in asdict(key).items() if k != "extra"}
            entry["scopes"] = list(key.scopes)
            entry.update(key.extra)
            entries.append(entry)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps({"version": 1, "keys": entries}, indent=1) + "\n")
            os.chmod(self.path, 0o600)  # hashes only, but nobody else needs to read them
        except OSError as exc:
            raise StoreError(f"Cannot write the API keys file {self.path}: {exc.strerror or exc}.") from exc
        self._stamp = None  # read back at the next use
