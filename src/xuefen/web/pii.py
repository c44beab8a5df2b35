"""身份证号 at rest (PIPL 第五十一条: encryption of personal information).

The number is stored twice, neither time in clear:

* ``Teacher.id_number_enc`` — Fernet (AES-128-CBC + HMAC-SHA256, from the
  ``cryptography`` package), a fresh IV each time, under the keys of
  ``XUEFEN_ID_KEYS`` (comma-separated; the first encrypts, all decrypt, so a
  key is rotated by putting the new one first and running
  ``xuefen manage rotate_id_key``);
* ``Teacher.id_hmac`` — HMAC-SHA256 of the normalised number under
  ``XUEFEN_ID_HMAC_KEY``: equal numbers give equal digests, so lookups and
  the uniqueness constraint work without decrypting anything.

Production refuses to start without both keys.  The embedded (SQLite)
default — **development only** — creates random keys once in
``var/id_keys`` (mode 0600) beside the database; a copy of ``var/`` is then a
copy of the keys, which is why production takes them from the environment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def normalise(value: str) -> str:
    return value.strip().upper()


def _dev_keys() -> tuple[list[str], str]:
    """DEVELOPMENT DEFAULT for the embedded mode: per-installation random keys."""
    path = Path(settings.DATA_DIR) / "id_keys"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{Fernet.generate_key().decode()}\n{secrets.token_urlsafe(32)}\n", encoding="utf-8")
        path.chmod(0o600)
    fernet_key, hmac_key = path.read_text(encoding="utf-8").split()[:2]
    return [fernet_key], hmac_key


@lru_cache(maxsize=1)
def _keys() -> tuple[MultiFernet, bytes]:
    raw = os.environ.get("XUEFEN_ID_KEYS", "")
    mac = os.environ.get("XUEFEN_ID_HMAC_KEY", "")
    if raw and mac:
        fernet_keys = [k.strip() for k in raw.split(",") if k.strip()]
    elif settings.PRODUCTION:
        raise RuntimeError("生产环境必须设置 XUEFEN_ID_KEYS 与 XUEFEN_ID_HMAC_KEY（身份证号加密与检索密钥）")
    else:
        fernet_keys, mac = _dev_keys()
    return MultiFernet([Fernet(k.encode()) for k in fernet_keys]), mac.encode()


def reset_keys() -> None:
    """Forget the cached keys (after the environment changed: rotation, tests)."""
    _keys.cache_clear()


def encrypt(value: str) -> str:
    return _keys()[0].encrypt(normalise(value).encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _keys()[0].decrypt(token.encode()).decode()
    except InvalidToken as e:
        raise RuntimeError("身份证号无法解密：XUEFEN_ID_KEYS 中没有加密它的密钥") from e


def rotate(token: str) -> str:
    """The same number under the current (first) key."""
    return _keys()[0].rotate(token.encode()).decode()


def digest(value: str) -> str:
    return hmac.new(_keys()[1], normalise(value).encode(), hashlib.sha256).hexdigest()


def new_key() -> str:
    """A fresh Fernet key, for the operator adding one to XUEFEN_ID_KEYS."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()
