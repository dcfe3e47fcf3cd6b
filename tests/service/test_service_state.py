"""Service state. The token cache: entries serve for TOKEN_CACHE_SECONDS; one used in its last
TOKEN_REFRESH_AHEAD seconds is validated again in the background (one refresh at a time),
extended if still valid, dropped if revoked, and a logout during the refresh stays a logout.
Start-up objects are frozen out of the collector; the master pool's DuckDB threads come from
UNIGRID_SERVICE_DB_THREADS."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from unigrid.service import app as app_mod
from unigrid.service.auth import Principal, token_hash

ALICE = Principal("alice", "service")


def _state() -> app_mod.ServiceState:
    return app_mod.ServiceState(SimpleNamespace(decisions_db="unused"), None, None, None)


def _settle(state: app_mod.ServiceState) -> None:
    deadline = time.monotonic() + 5
    while state._refreshing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not state._refreshing


@pytest.mark.parametrize("left,valid,served,calls,kept", [
    (25.0, True, True, 0, "same"),       # fresh: served, not asked again
    (5.0, True, True, 1, "extended"),    # last seconds: served, refreshed and extended
    (5.0, False, True, 1, "dropped"),    # last seconds, revoked meanwhile: dropped
    (-1.0, True, False, 0, "same"),      # lapsed: not served (the caller asks the database)
])
def test_cached_principal_refreshes_ahead(monkeypatch, left, valid, served, calls, kept):
    asked: list[str] = []

    def fake(_db, secret, kind):
        asked.append(kind)
        return (ALICE,) if valid else None

    monkeypatch.setattr(app_mod, "principal_for_token", fake)
    s = _state()
    key = "api:" + token_hash("t0k")
    until = time.monotonic() + left
    s._tokens[key] = (ALICE, until)
    assert (s.cached_principal("t0k", "api") == ALICE) is served
    _settle(s)
    assert len(asked) == calls
    entry = s._tokens.get(key)
    if kept == "same":
        assert entry == (ALICE, until)
    elif kept == "extended":
        assert entry is not None and entry[1] > until + 15
    else:
        assert entry is None


def test_one_refresh_at_a_time_and_a_logout_stays(monkeypatch):
    release = threading.Event()
    asked: list[str] = []

    def slow(_db, _secret, kind):
        asked.append(kind)
        release.wait(5)
        return (ALICE,)

    monkeypatch.setattr(app_mod, "principal_for_token", slow)
    s = _state()
    key = "api:" + token_hash("t0k")
    s._tokens[key] = (ALICE, time.monotonic() + 5)
    for _ in range(20):  # a burst of requests in the refresh window
        assert s.cached_principal("t0k", "api") == ALICE
    s.forget("t0k")  # logout while the one refresh runs
    release.set()
    _settle(s)
    assert asked == ["api"] and key not in s._tokens


def test_start_up_objects_are_frozen_out_of_the_collector(env) -> None:
    """After start-up the app's long-lived objects are in the permanent generation, so a full
    collection under load does not scan them (it stalled lookups for hundreds of ms)."""
    import gc

    assert env.client.get("/healthz").status_code in (200, 404)
    assert gc.get_freeze_count() > 10_000


@pytest.mark.parametrize("extra,threads", [
    ({}, 1), ({"UNIGRID_SERVICE_DB_THREADS": "4"}, 4), ({"UNIGRID_SERVICE_DB_THREADS": "0"}, 1),
    ({"UNIGRID_SERVICE_DB_THREADS": ""}, 1),
])
def test_service_db_threads(extra, threads) -> None:
    assert app_mod.service_db_threads(SimpleNamespace(extra=extra)) == threads


def test_service_db_threads_names_a_bad_value() -> None:
    with pytest.raises(ValueError, match="UNIGRID_SERVICE_DB_THREADS.*'two'"):
        app_mod.service_db_threads(SimpleNamespace(extra={"UNIGRID_SERVICE_DB_THREADS": "two"}))
