"""The FastAPI application: ``create_app(settings)``.

State shared by the routes (``app.state.svc``): settings, the master pool, the access-log
writer, the overlay of human writes and a short cache of validated tokens.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from unigrid.service.auth import Principal, principal_for_token
from unigrid.service.overlay import Overlay
from unigrid.service.store import AccessLogWriter, MasterPool
from unigrid.settings import Settings
from warehouse.queries import NoMasterYet

log = logging.getLogger("unigrid.service")

LOGIN_MAX_FAILS = 5
LOGIN_WINDOW = 15 * 60.0
"""Five failed logins of one user name within 15 minutes block it for the rest of the window
(per worker process)."""

TOKEN_CACHE_SECONDS = 30.0
"""How long a validated token is trusted without asking the database again (a revoked token
stops working at most this long after revocation)."""

TOKEN_REFRESH_AHEAD = 10.0
"""A token used in the last this-many seconds of its cache entry is validated again in a
background thread while the entry still serves, so a busy caller's entry never lapses: when
it did, every request in flight asked the database at once (the API's p99)."""


@dataclass
class ServiceState:
    """Everything the routes share."""

    settings: Settings
    pool: MasterPool
    access: AccessLogWriter
    overlay: Overlay
    cookie_secure: bool = False
    _tokens: dict[str, tuple[Principal, float]] = field(default_factory=dict)
    _tlock: threading.Lock = field(default_factory=threading.Lock)
    _fails: dict[str, list[float]] = field(default_factory=dict)
    _refreshing: set[str] = field(default_factory=set)

    def login_blocked(self, username: str) -> bool:
        """True after :data:`LOGIN_MAX_FAILS` failed logins of a name within the window."""
        now = time.monotonic()
        with self._tlock:
            recent = [t for t in self._fails.get(username, []) if now - t < LOGIN_WINDOW]
            self._fails[username] = recent
            return len(recent) >= LOGIN_MAX_FAILS

    def login_failed(self, username: str) -> None:
        """Count a failed login of a name."""
        with self._tlock:
            if len(self._fails) > 10000:
                self._fails.clear()
            self._fails.setdefault(username, []).append(time.monotonic())

    def login_ok(self, username: str) -> None:
        """Forget the failures of a name after a good login."""
        with self._tlock:
            self._fails.pop(username, None)

    def cached_principal(self, secret: str, kind: str) -> Principal | None:
        """The user of a token validated less than :data:`TOKEN_CACHE_SECONDS` ago, else None
        (no database access: safe on the event loop)."""
        from unigrid.service.auth import token_hash

        key = kind + ":" + token_hash(secret)
        now = time.monotonic()
        with self._tlock:
            hit = self._tokens.get(key)
            if not hit or hit[1] <= now:
                return None
            renew = hit[1] - now < TOKEN_REFRESH_AHEAD and key not in self._refreshing
            if renew:
                self._refreshing.add(key)
        if renew:
            threading.Thread(target=self._refresh, args=(key, secret, kind), daemon=True,
                             name="token-refresh").start()
        return hit[0]

    def _refresh(self, key: str, secret: str, kind: str) -> None:
        """Validate a cached token again (thread): a fresh entry if still valid, none if not.
        An entry dropped meanwhile (logout) stays dropped."""
        started = time.monotonic()
        try:
            got = principal_for_token(self.settings.decisions_db, secret, kind)
        except Exception as exc:  # noqa: BLE001 - the entry lapses; the next request asks
            log.warning("token revalidation failed (%s); the cache entry lapses",
                        type(exc).__name__)
            with self._tlock:
                self._refreshing.discard(key)
            return
        with self._tlock:
            self._refreshing.discard(key)
            if key not in self._tokens:
                return
            if got is None:
                del self._tokens[key]
            else:
                self._tokens[key] = (got[0], started + TOKEN_CACHE_SECONDS)

    def principal(self, secret: str, kind: str) -> Principal | None:
        """The user of a token / session secret (cached briefly), None if invalid."""
        from unigrid.service.auth import token_hash

        hit = self.cached_principal(secret, kind)
        if hit is not None:
            return hit
        key = kind + ":" + token_hash(secret)
        now = time.monotonic()
        got = principal_for_token(self.settings.decisions_db, secret, kind)
        if got is None:
            return None
        with self._tlock:
            if len(self._tokens) > 10000:
                self._tokens.clear()
            self._tokens[key] = (got[0], now + TOKEN_CACHE_SECONDS)
        return got[0]

    def forget(self, secret: str) -> None:
        """Drop a token from the cache (logout)."""
        from unigrid.service.auth import token_hash

        with self._tlock:
            for kind in ("api", "session"):
                self._tokens.pop(kind + ":" + token_hash(secret), None)


SERVICE_DB_THREADS = 1
"""DuckDB threads of the service's master connection (``UNIGRID_SERVICE_DB_THREADS``): the
service's concurrency comes from many small queries at once, and a second thread per query
only adds scheduling to a point lookup (on the 1M master with 2 cores: p99 17-19 ms at 50
clients with 1 thread, 21-22 ms with DuckDB's default of one per core). Raise it where heavy
pages (the voter roll) matter more than lookups."""


def service_db_threads(settings: Settings) -> int:
    """The DuckDB threads of the service's master pool (at least 1)."""
    raw = settings.extra.get("UNIGRID_SERVICE_DB_THREADS", "")
    try:
        return max(1, int(raw)) if raw else SERVICE_DB_THREADS
    except ValueError:
        raise ValueError(f"UNIGRID_SERVICE_DB_THREADS must be a whole number, not {raw!r}")


def create_app(settings: Settings, cookie_secure: bool = False,
               fast_lookup: bool = True) -> FastAPI:
    """The service for ``settings`` (master and decisions databases). ``fast_lookup`` serves
    successful ``GET /persons/{id_number}`` lookups outside FastAPI's dependency machinery
    (:mod:`unigrid.service.fastpath`; same checks, access log, masking and bytes)."""
    from unigrid.service.api import router as api_router
    from unigrid.service.fastpath import PersonLookup
    from unigrid.service.pages import router as pages_router

    pool = MasterPool(settings.master_db, threads=service_db_threads(settings))
    state = ServiceState(settings, pool,
                         AccessLogWriter(settings.decisions_db), Overlay(settings.decisions_db),
                         cookie_secure)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import gc

        # What start-up built (modules, the app, its models) lives as long as the process:
        # moved out of the collector's reach, a full collection under load scans only what
        # requests made (it scanned everything, stalling every lookup in flight: the p99).
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()  # back in reach at shutdown (and between the tests' apps)
        state.access.close()
        state.pool.close()

    app = FastAPI(title="unigrid master data service",
                  description="Query API for downstream systems, review and audit pages for "
                  "department staff. Every endpoint needs a role (Bearer token for the API, "
                  "login session for the pages); personal data is masked unless the role "
                  "needs it; every person lookup is written to the access log with its "
                  "stated purpose.", version="1.0", lifespan=lifespan)
    app.state.svc = state

    @app.exception_handler(NoMasterYet)
    async def no_master(_request: Request, _exc: NoMasterYet) -> JSONResponse:
        return JSONResponse({"detail": "no master published yet"}, status_code=503)

    app.include_router(api_router)
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    if fast_lookup:
        app.add_middleware(PersonLookup)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory unigrid.service.app:app_from_env`` (settings from the
    environment / ``unigrid.toml``; ``UNIGRID_FAST_LOOKUP=0`` turns the fast lookup path off,
    for comparisons)."""
    import os

    from unigrid.settings import load_settings
    return create_app(load_settings(),
                      cookie_secure=os.environ.get("UNIGRID_COOKIE_SECURE", "") == "1",
                      fast_lookup=os.environ.get("UNIGRID_FAST_LOOKUP", "1") != "0")


def svc(request: Request) -> ServiceState:
    """The shared state of the app serving ``request``."""
    return request.app.state.svc


def principal_info(p: Principal) -> dict[str, Any]:
    """What ``/me`` shows."""
    return {"username": p.username, "role": p.role, "department": p.department}
