"""Access log: mandatory user and purpose; written to the decisions DB, published with the master."""

from __future__ import annotations

import pytest

from unigrid.settings import Settings
from warehouse.access_log import AccessDenied, log_access, read_access_log
from warehouse.publish import publish
from warehouse.queries import open_master


@pytest.mark.parametrize(("user", "purpose"), [("", "养老金核查"), ("auditor01", ""),
                                               ("  ", "x"), ("auditor01", "   ")])
def test_user_and_purpose_are_mandatory(settings: Settings, user: str, purpose: str) -> None:
    with pytest.raises(AccessDenied):
        log_access(settings.decisions_db, user, "auditor", "view_person", "P1", purpose)
    assert read_access_log(settings.decisions_db) == []


def test_logged_accesses_are_published_with_the_master(settings: Settings) -> None:
    a = log_access(settings.decisions_db, "auditor01", "auditor", "view_person", "P000000000001",
                   "养老金核查")
    b = log_access(settings.decisions_db, "admin", "admin", "export_roll", None, "选举")
    assert b == a + 1
    publish(settings, "20261120")
    with open_master(settings) as con:
        rows = con.execute('SELECT "user", action, person_id, purpose FROM audit.access_log '
                           "ORDER BY access_id").fetchall()
    assert rows == [("auditor01", "view_person", "P000000000001", "养老金核查"),
                    ("admin", "export_roll", None, "选举")]
    # the next publish does not duplicate the entries
    publish(settings, "20261121")
    with open_master(settings) as con:
        assert con.execute("SELECT count(*) FROM audit.access_log").fetchone()[0] == 2
