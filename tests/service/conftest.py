"""Fixtures: a published master, users of every role with API tokens, a TestClient."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.service.factory import make_master
from unigrid.service.app import create_app
from unigrid.service.auth import add_user, issue_token, set_password
from unigrid.settings import Settings

USERS: dict[str, tuple[str, str | None]] = {
    "admin1": ("admin", None),
    "steward_ps": ("steward", "公安局"),
    "steward_health": ("steward", "health"),
    "auditor1": ("auditor", None),
    "svc1": ("service", None),
}
"""User -> (role, department)."""

ROLE_USER = {"admin": "admin1", "steward": "steward_ps", "auditor": "auditor1", "service": "svc1"}
PASSWORD = "correct horse battery"


@dataclass
class Env:
    """A running service environment."""

    settings: Settings
    client: TestClient
    tokens: dict[str, str]

    def h(self, user: str) -> dict[str, str]:
        """Authorization header of a user."""
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def make_users(settings: Settings) -> dict[str, str]:
    """Create :data:`USERS` (password :data:`PASSWORD`, already changed) and API tokens."""
    tokens = {}
    for u, (role, dept) in USERS.items():
        add_user(settings.decisions_db, u, role, dept)
        set_password(settings.decisions_db, u, PASSWORD)
        tokens[u] = issue_token(settings.decisions_db, u, "api", 1)
    return tokens


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """A fresh master, decisions DB, users and client per test."""
    s = make_master(tmp_path / "home")
    tokens = make_users(s)
    with TestClient(create_app(s)) as c:
        yield Env(s, c, tokens)


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One environment for read-only tests of a module."""
    s = make_master(tmp_path_factory.mktemp("svc") / "home")
    tokens = make_users(s)
    with TestClient(create_app(s)) as c:
        yield Env(s, c, tokens)
