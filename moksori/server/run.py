"""Running the server (uvicorn) and managing API keys, for ``moksori serve`` and ``moksori keys``.

Settings reach uvicorn worker processes through ``MOKSORI_SERVER_*`` environment variables
and the app factory :func:`app_from_env`, so ``--workers N`` starts N identical processes.
"""

from __future__ import annotations

import os
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from moksori.server.app import create_app
from moksori.server.protocol import MAX_HEAD_BYTES
from moksori.server.settings import DEFAULT_DB_URL, ServerSettings
from moksori.synthesis import ALLOCATOR_ENV, configure_allocator

APP_FACTORY = "moksori.server.run:app_from_env"
KEEP_ALIVE_S = 5  # an idle kept-alive connection is closed after this long
PROTOCOL = "moksori.server.protocol:GuardedH11Protocol"  # by name: worker processes import it
WORKER_HEALTHCHECK_S = 60


def app_from_env() -> FastAPI:
    """The uvicorn app factory: settings from ``MOKSORI_SERVER_*`` variables."""
    configure_allocator()
    return create_app(ServerSettings.from_env())


def page_urls(host: str, port: int, *, studio: bool = True) -> str:
    """What ``moksori serve`` prints: where its pages are (a wildcard bind address is reached
    through any of the machine's addresses; loopback is shown)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    lines = [f"moksori server at {base}/", f"  voices (listen):  {base}/listen"]
    lines.append(f"  recording studio: {base}/studio" if studio else "  recording studio: off (no --db-url)")
    lines.append(f"  API docs:         {base}/docs")
    if shown != host:
        lines.append(f"  (listening on all addresses, {host or '*'}: from other machines use this machine's address)")
    return "\n".join(lines)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    voices_dir: str | Path = "voices",
    workers: int = 1,
    db_url: str | None = DEFAULT_DB_URL,
    require_api_keys: bool | None = None,
    default_voice: str | None = None,
    *,
    max_concurrency: int = 2,
    max_queue: int = 16,
    max_text_chars: int = 5000,
    cache_entries: int = 256,
    log_level: str = "info",
    include_default_voice: bool = True,
    synthesis_precision: str | None = None,
) -> None:
    """Serve until interrupted; Ctrl-C / SIGTERM lets running requests finish (up to
    ``graceful_shutdown_s``) before exiting. The voice shipped with moksori (``ko_default``)
    is offered beside those in ``voices_dir`` unless ``include_default_voice`` is False."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    from_env = ServerSettings.from_env()  # settings without a command-line option
    settings = ServerSettings(
        voices_dir=Path(voices_dir).resolve(),
        default_voice=default_voice,
        db_url=db_url,
        require_api_keys=require_api_keys,
        host=host,
        max_concurrency=max_concurrency,
        max_queue=max_queue,
        max_text_chars=max_text_chars,
        cache_entries=cache_entries,
        cache_max_bytes=from_env.cache_max_bytes,
        synthesis_threads=_threads_per_job(max_concurrency, workers),
        include_default_voice=include_default_voice,
        body_timeout_s=from_env.body_timeout_s,
        header_timeout_s=from_env.header_timeout_s,
        allowed_origins=from_env.allowed_origins,
        redis_url=from_env.redis_url,
        cache_ttl_s=from_env.cache_ttl_s,
        synthesis_precision=synthesis_precision or from_env.synthesis_precision,
    )
    _prepare(settings)
    print(page_urls(host, port, studio=db_url is not None), flush=True)
    os.environ.update(settings.to_env())
    # glibc reads these when a process starts: worker processes get them from the environment;
    # this process (workers=1) gets the same through mallopt in app_from_env().
    for name, value in ALLOCATOR_ENV.items():
        os.environ.setdefault(name, value)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
        # Slow and oversized request heads: a deadline, a size cap, JSON errors (moksori.server.protocol).
        http=PROTOCOL,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_keep_alive=KEEP_ALIVE_S,
        # A worker importing PyTorch on a busy machine can miss uvicorn's 5 s health check and be
        # killed and restarted for ever.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )


def _prepare(settings: ServerSettings) -> None:
    """Fail early on bad settings, and migrate the database once, before workers start."""
    if settings.keys_required and settings.db_url is None:
        raise ValueError(f"binding to {settings.host} requires API keys, and they need a database (db_url)")
    if settings.db_url is not None:
        from moksori.store import Database

        Database(settings.db_url).dispose()


def _threads_per_job(max_concurrency: int, workers: int) -> int:
    """PyTorch threads per synthesis job so that all jobs together use the cores once."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // (max_concurrency * workers))


# --- API keys ----------------------------------------------------------------------------------


def keys_create(db_url: str = DEFAULT_DB_URL, name: str = "default", rate_limit: int = 60, owner_id: int | None = None) -> str:
    """Create an API key, print it (shown this once) and return the plaintext."""
    from moksori.store import Database
    from moksori.store.keys import create_api_key

    with Database(db_url) as db:
        key, plaintext = create_api_key(db, name, owner_id=owner_id, rate_limit_per_minute=rate_limit)
    print(f"created API key {key.id} {key.name!r} ({rate_limit} requests/minute)")
    print(plaintext)
    print("Store it now: the key cannot be shown again.")
    return plaintext


def owner_id_of(db_url: str, username: str) -> int:
    """The id of the studio user ``username``; ValueError naming it when there is none."""
    from sqlalchemy import select

    from moksori.store import Database
    from moksori.store.accounts import normalize_username
    from moksori.store.models import User

    name = normalize_username(username)
    with Database(db_url) as db, db.session() as session:
        user_id = session.scalar(select(User.id).where(User.username == name))
    if user_id is None:
        raise ValueError(f"no user {name!r}; create one with `moksori users create {name}`")
    return int(user_id)


def users_create(db_url: str, username: str, password: str) -> int:
    """Create a studio account (the operator's way when sign-up is off); returns its id."""
    from moksori.store import Database
    from moksori.store.accounts import create_user

    with Database(db_url) as db:
        user = create_user(db, username, password)
    print(f"created user {user.id} {user.username!r}")
    return int(user.id)


def keys_list(db_url: str = DEFAULT_DB_URL) -> None:
    """Print every API key (id, prefix, name, limit, state); never the key itself."""
    from moksori.store import Database
    from moksori.store.keys import list_api_keys

    with Database(db_url) as db:
        keys = list_api_keys(db)
    if not keys:
        print("no API keys")
        return
    print(f"{'id':>4}  {'prefix':<8}  {'per min':>7}  {'state':<24}  name")
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        if key.revoked_at is None and key.last_used_at is not None:
            state = f"active, used {key.last_used_at:%Y-%m-%d %H:%M}"
        print(f"{key.id:>4}  {key.prefix:<8}  {key.rate_limit_per_minute:>7}  {state:<24}  {key.name}")


def keys_revoke(db_url: str = DEFAULT_DB_URL, key: str = "") -> None:
    """Revoke a key by id or prefix and print what was revoked (LookupError/ValueError when
    nothing or several keys match)."""
    from moksori.store import Database
    from moksori.store.keys import revoke_api_key

    with Database(db_url) as db:
        revoked = revoke_api_key(db, key)
    print(f"revoked API key {revoked.id} {revoked.prefix} {revoked.name!r}")
