"""Cross-department discrepancy rules: declarations, the check stage, evaluation, reviews.

- :mod:`quality.rules.catalog`: the rules as data (:data:`RULES`);
- :mod:`quality.rules.inputs`: the tables the rules read (temporary ``chk_rec``, ``chk_death``);
- :mod:`quality.rules.runner`: :func:`check_stage` and the runner writing ``"check".finding``;
- :mod:`quality.rules.review`: auditors' statuses (append-only, decisions database);
- :mod:`quality.rules.evaluate`: :func:`evaluate_rules` against the generator's truth.

See docs/rules.md.
"""

from __future__ import annotations

from typing import Any

from quality.rules.catalog import RULES, RULES_BY_ID, Rule


def rule_infos() -> list[dict[str, Any]]:
    """The rules' report metadata (plain dicts, for the report in ``warehouse.report``)."""
    return [{"id": r.id, "title_zh": r.title_zh, "description_zh": r.description_zh,
             "department_zh": r.department_zh, "severity": r.severity,
             "params": dict(r.params), "columns_zh": dict(r.columns_zh)} for r in RULES]


__all__ = ["RULES", "RULES_BY_ID", "Rule", "rule_infos"]
