"""API keys for the HTTP server.

A key is ``mk_`` followed by 32 URL-safe characters from ``secrets`` (192 bits). Only its
SHA-256 is stored: a fast hash is enough for a random secret of that size (there is nothing
to brute-force), unlike passwords, which people choose and which get a slow hash in
``accounts``. The plaintext is returned once, by ``create_api_key``, and never again.

Functions return detached ``ApiKey`` objects (sessions do not expire on commit), safe to read
after the session has closed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select

from moksori.store.database import Database
from moksori.store.models import ApiKey, utcnow

KEY_PREFIX = "mk_"
_RANDOM_CHARS = 32
PREFIX_LENGTH = 8


def _hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _new_plaintext() -> str:
    # Base64 turns every 3 random bytes into 4 characters: 24 bytes, exactly 32 characters.
    return KEY_PREFIX + secrets.token_urlsafe(_RANDOM_CHARS * 3 // 4)


def create_api_key(
    db: Database, name: str, *, owner_id: int | None = None, rate_limit_per_minute: int = 60
) -> tuple[ApiKey, str]:
    """Create a key; returns the stored row and the plaintext key (shown this once only)."""
    name = name.strip()
    if not name:
        raise ValueError("API key name must not be empty")
    if rate_limit_per_minute <= 0:
        raise ValueError(f"rate_limit_per_minute must be positive, got {rate_limit_per_minute}")
    plaintext = _new_plaintext()
    key = ApiKey(
        name=name,
        key_hash=_hash_key(plaintext),
        prefix=plaintext[:PREFIX_LENGTH],
        owner_id=owner_id,
        rate_limit_per_minute=rate_limit_per_minute,
    )
    with db.session() as session:
        session.add(key)
    return key, plaintext


def verify_api_key(db: Database, plaintext: str) -> ApiKey | None:
    """The live key matching ``plaintext`` (its last_used_at now set), or None."""
    if not isinstance(plaintext, str) or not plaintext.startswith(KEY_PREFIX):
        return None
    if len(plaintext) != len(KEY_PREFIX) + _RANDOM_CHARS:
        return None
    digest = _hash_key(plaintext)
    with db.session() as session:
        # Look up by the non-secret prefix, then compare the hashes in constant time.
        candidates = session.scalars(
            select(ApiKey).where(
                ApiKey.prefix == plaintext[:PREFIX_LENGTH], ApiKey.revoked_at.is_(None)
            )
        )
        for key in candidates:
            if hmac.compare_digest(key.key_hash, digest):
                key.last_used_at = utcnow()
                return key
    return None


def list_api_keys(db: Database) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    with db.session() as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(db: Database, key_id_or_prefix: int | str) -> ApiKey:
    """Revoke a key by id or by its 8-character prefix; revoking twice keeps the first time.

    Raises LookupError when nothing matches and ValueError when a prefix matches several keys.
    """
    if isinstance(key_id_or_prefix, str) and key_id_or_prefix.isdigit():
        key_id_or_prefix = int(key_id_or_prefix)  # from a command line; prefixes start "mk_"
    with db.session() as session:
        if isinstance(key_id_or_prefix, int):
            matches = [k for k in [session.get(ApiKey, key_id_or_prefix)] if k is not None]
        else:
            matches = list(session.scalars(select(ApiKey).where(ApiKey.prefix == key_id_or_prefix)))
        if not matches:
            raise LookupError(f"no API key with id or prefix {key_id_or_prefix!r}")
        if len(matches) > 1:
            ids = ", ".join(str(k.id) for k in matches)
            raise ValueError(
                f"prefix {key_id_or_prefix!r} matches several API keys (ids {ids}); use the id"
            )
        key = matches[0]
        if key.revoked_at is None:
            key.revoked_at = utcnow()
        return key
