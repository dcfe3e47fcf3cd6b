"""The cross-department discrepancy rules, declared as data.

Each :class:`Rule` names its id, Chinese title and description, owning department, severity,
parameters and one SQL query; :mod:`quality.rules.runner` executes them all the same way. A
rule's SQL reads the temporary tables the runner prepares on the work connection (see
:mod:`quality.rules.inputs`):

- ``chk_rec``: one row per current source record linked to a person (``source``,
  ``source_key``, ``kind``, ``department``, ``person_id``, ``row_hash``, the canonical fields
  the rules use, and from ``std.record`` ``id18``/``id_ok``/``name_pyf``/``name_unknown``/
  ``record_time``/``family_household_no``);
- ``chk_death``: one row per person with death evidence (``death_date``, ``direct`` = a death
  certificate or cremation record says so, ``records``);

A rule's query returns one row per finding with the columns of :data:`RULE_COLUMNS`.
Placeholders ``{business_date}`` (a DATE literal) and ``{<param>}`` (from ``params``) are
filled by the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

Severity = Literal["high", "medium", "low"]

RULE_COLUMNS: tuple[str, ...] = (
    "subject", "person_id", "subject_key", "records", "detail", "amount_monthly",
    "amount_total", "months", "event_date",
)
"""Columns every rule query returns.

- ``subject``: what the finding is about (person_id, subsidy household, or an ID number; the
  runner turns a secret subject into an HMAC before anything is stored);
- ``records``: LIST of ``struct(source, source_key, row_hash)``: the evidence records;
- ``detail``: a STRUCT (stored as JSON) of dates, places and amounts (no names or ID numbers);
- ``event_date``: the date the discrepancy is about (death, last seen, birth, ...), for the
  per-month chart.
"""


@dataclass(frozen=True)
class Rule:
    """One declared cross-department check."""

    id: str
    title_zh: str
    description_zh: str
    department: str
    """Department expected to act on the finding (contract department code)."""
    department_zh: str
    severity: Severity
    sql: str
    subject: Literal["person", "household", "id_number"] = "person"
    """What ``subject`` holds: the finding id is a hash of (rule, subject)."""
    params: Mapping[str, int] = field(default_factory=dict)
    columns_zh: Mapping[str, str] = field(default_factory=dict)
    """Detail field -> Chinese header for the report (order = column order)."""

    @property
    def secret_subject(self) -> bool:
        """True when the subject is personal data (an ID number) that must be keyed-hashed."""
        return self.subject == "id_number"

    def render_sql(self, business_date: str, overrides: Mapping[str, int] | None = None) -> str:
        """The query with its placeholders filled (``business_date`` as ``YYYY-MM-DD``)."""
        values = {**self.params, **(overrides or {})}
        return self.sql.format(business_date=f"DATE '{business_date}'",
                               **{k: int(v) for k, v in values.items()})


_MONTHS = "(year({b}) * 12 + month({b})) - (year({a}) * 12 + month({a}))"


def agrees(r: str, ids: str, idents: str) -> str:
    """SQL: record ``r`` is the same person as the evidence with ``ids`` / ``idents``.

    True when the record has no usable ID number, the evidence has none, the ID numbers agree,
    or name (dialect-folded pinyin) and birth date agree (a second registration under another
    number). Guards the rules against a wrong merge: a dead father's death certificate and
    his living daughter's pension linked to one person would otherwise look like a pension paid
    to the dead.
    """
    return (f"({r}.id18 IS NULL OR len({ids}) = 0 OR list_contains({ids}, {r}.id18) "
            f"OR list_contains({idents}, {r}.name_pyf || '|' || CAST({r}.birth_date AS VARCHAR)))")


def months_between(a: str, b: str) -> str:
    """SQL: whole calendar months from the month of ``a`` to the month of ``b``."""
    return _MONTHS.format(a=a, b=b)


DECEASED_PENSIONER = Rule(
    id="deceased_pensioner",
    title_zh="死亡人员仍领取养老金",
    description_zh="有死亡证据（死亡医学证明、火化登记或因死亡注销户口）的人员，其养老金在死亡"
                   "月份之后仍在发放；列出多发月数和多发金额。",
    department="human_resources_social_security", department_zh="人社局", severity="high",
    sql=f"""
WITH p AS (
    SELECT r.person_id, r.source, r.source_key, r.row_hash,
           r.pension_last_paid_month AS last_paid,
           r.pension_monthly_amount AS amount, r.payment_status, d.death_date,
           d.records AS death_records, d.evidence_kinds,
           {months_between('d.death_date', 'r.pension_last_paid_month')} AS months
    FROM chk_rec r JOIN chk_death d USING (person_id)
    WHERE r.kind = 'pension_payments' AND r.pension_last_paid_month IS NOT NULL
      AND {agrees('r', 'd.ids', 'd.idents')})
SELECT person_id AS subject, person_id, min(source || ':' || source_key) AS subject_key,
       list_distinct(flatten(list(death_records) || [list(struct_pack(source := source,
           source_key := source_key, row_hash := row_hash))])) AS records,
       struct_pack(death_date := min(death_date), death_evidence := min(evidence_kinds),
                   last_paid_month := strftime(max(last_paid), '%Y-%m'),
                   payment_status := min(payment_status),
                   months_overpaid := max(months)) AS detail,
       sum(amount)::DECIMAL(18,2) AS amount_monthly,
       sum(amount * months)::DECIMAL(18,2) AS amount_total,
       max(months)::INTEGER AS months, min(death_date) AS event_date
FROM p WHERE months >= {{min_months}}
GROUP BY person_id
""",
    params={"min_months": 1},
    columns_zh={"death_date": "死亡日期", "death_evidence": "死亡证据",
                "last_paid_month": "最近发放月份", "payment_status": "发放状态",
                "months_overpaid": "死亡后发放月数"},
)

WANTED_PERSON_SEEN = Rule(
    id="wanted_person_seen",
    title_zh="在逃人员在其他部门出现",
    description_zh="在逃人员名单上的人员，在公安以外部门的记录中出现（网格采集、社保、民政、"
                   "卫健等）；列出最近一次出现的地点和日期。",
    department="public_security", department_zh="公安局", severity="high",
    sql="""
WITH w AS (
    SELECT person_id, list(struct_pack(source := source, source_key := source_key,
                                       row_hash := row_hash)) AS wanted_records,
           min(case_no) AS case_no,
           coalesce(list(DISTINCT id18) FILTER (WHERE id18 IS NOT NULL), []) AS ids,
           coalesce(list(DISTINCT name_pyf || '|' || CAST(birth_date AS VARCHAR))
                    FILTER (WHERE name_pyf IS NOT NULL AND birth_date IS NOT NULL), []) AS idents
    FROM chk_rec WHERE kind = 'wanted_list' GROUP BY person_id),
o AS (
    SELECT r.person_id, r.source, r.source_key, r.row_hash, r.department, r.address,
           r.grid_code, coalesce(r.record_time, r.event_time) AS seen_at
    FROM chk_rec r JOIN w USING (person_id)
    WHERE r.department <> 'public_security' AND """ + agrees("r", "w.ids", "w.idents") + """)
SELECT o.person_id AS subject, o.person_id,
       min(o.source || ':' || o.source_key) AS subject_key,
       list_distinct(first(w.wanted_records) || list(struct_pack(source := o.source,
           source_key := o.source_key, row_hash := o.row_hash))) AS records,
       struct_pack(last_seen_at := strftime(max(o.seen_at), '%Y-%m-%d %H:%M'),
                   last_seen_source := arg_max(o.source, o.seen_at),
                   last_seen_department := arg_max(o.department, o.seen_at),
                   last_seen_address := arg_max(o.address, o.seen_at),
                   last_seen_grid := arg_max(o.grid_code, o.seen_at),
                   departments := string_agg(DISTINCT o.department, ',' ORDER BY o.department),
                   records_elsewhere := count(*)) AS detail,
       NULL::DECIMAL(18,2) AS amount_monthly, NULL::DECIMAL(18,2) AS amount_total,
       NULL::INTEGER AS months, max(o.seen_at)::DATE AS event_date
FROM o JOIN w USING (person_id)
GROUP BY o.person_id
""",
    columns_zh={"last_seen_at": "最近出现时间", "last_seen_department": "出现部门",
                "last_seen_source": "出现系统", "last_seen_address": "最近出现地点",
                "last_seen_grid": "网格编码", "records_elsewhere": "其他部门记录数"},
)

DECEASED_SUBSIDY = Rule(
    id="deceased_subsidy",
    title_zh="户主死亡后仍发放低保",
    description_zh="低保家庭的户主有死亡证据，但低保金在其死亡月份之后仍在发放。",
    department="civil_affairs", department_zh="民政局", severity="high",
    subject="household",
    sql=f"""
WITH s AS (
    SELECT r.person_id, r.source, r.source_key, r.row_hash, r.subsidy_case_no,
           r.subsidy_last_paid_month AS last_paid, r.subsidy_monthly_amount AS amount,
           r.payment_status, d.death_date, d.records AS death_records, d.evidence_kinds,
           {months_between('d.death_date', 'r.subsidy_last_paid_month')} AS months
    FROM chk_rec r JOIN chk_death d USING (person_id)
    WHERE r.kind = 'subsistence_allowance' AND r.relation_to_head = '户主'
      AND r.subsidy_last_paid_month IS NOT NULL AND {agrees('r', 'd.ids', 'd.idents')})
SELECT source || ':' || coalesce(subsidy_case_no, source_key) AS subject,
       min(person_id) AS person_id,
       source || ':' || coalesce(subsidy_case_no, source_key) AS subject_key,
       list_distinct(flatten(list(death_records) || [list(struct_pack(source := source,
           source_key := source_key, row_hash := row_hash))])) AS records,
       struct_pack(death_date := min(death_date), death_evidence := min(evidence_kinds),
                   last_paid_month := strftime(max(last_paid), '%Y-%m'),
                   payment_status := min(payment_status),
                   months_paid_after_death := max(months)) AS detail,
       max(amount)::DECIMAL(18,2) AS amount_monthly,
       max(amount * months)::DECIMAL(18,2) AS amount_total,
       max(months)::INTEGER AS months, min(death_date) AS event_date
FROM s WHERE months >= {{min_months}}
GROUP BY source, coalesce(subsidy_case_no, source_key)
""",
    params={"min_months": 1},
    columns_zh={"death_date": "户主死亡日期", "death_evidence": "死亡证据",
                "last_paid_month": "最近发放月份", "payment_status": "发放状态",
                "months_paid_after_death": "死亡后发放月数"},
)

DUPLICATE_REGISTRATION = Rule(
    id="duplicate_registration",
    title_zh="重复户口登记（重户）",
    description_zh="同一人在两个及以上不同户内有同时有效的户籍登记（至少一条仍为正常；另一条正常，"
                   "或直到其死亡注销时仍有效）。包括匹配已认定为同一人的，以及匹配送人工复核的"
                   "疑似同一人（姓名、出生日期、性别一致而身份证号不同）。",
    department="public_security", department_zh="公安局", severity="medium",
    sql="""
WITH k AS (
    SELECT * FROM chk_rec
    WHERE kind = 'household_registry'
      AND (registry_status = '正常' OR (registry_status = '注销' AND cancel_reason = '死亡'))),
cand AS (SELECT person_id FROM k GROUP BY person_id HAVING count(*) >= 2),
r AS (SELECT k.* FROM k SEMI JOIN cand USING (person_id)),
linked AS (
    SELECT person_id AS subject, person_id, min(source || ':' || source_key) AS subject_key,
           list(struct_pack(source := source, source_key := source_key, row_hash := row_hash)
                ORDER BY source, source_key) AS records,
           struct_pack(basis := '同一人员', registrations := count(*),
                       active := count(*) FILTER (WHERE registry_status = '正常'),
                       households := string_agg(DISTINCT household_no, ',' ORDER BY household_no),
                       id_numbers := count(DISTINCT id18),
                       match_weight := NULL::DOUBLE) AS detail,
           max(registered_at) AS event_date
    FROM r GROUP BY person_id
    HAVING count(DISTINCT source_key) >= 2 AND count(DISTINCT household_no) >= 2
       AND count(*) FILTER (WHERE registry_status = '正常') >= 1
       -- one ID number under two names is a 重号 (id_conflict), not a 重户
       AND NOT (count(DISTINCT id18) = 1 AND count(DISTINCT name_pyf) >= 2)),
pr AS (
    SELECT least(a.person_id, b.person_id) AS pa, greatest(a.person_id, b.person_id) AS pb,
           a.source AS sa, a.source_key AS ka, a.row_hash AS ha, a.registry_status AS st_a,
           a.household_no AS hh_a, a.registered_at AS ra, a.id18 AS ia,
           b.source AS sb, b.source_key AS kb, b.row_hash AS hb, b.registry_status AS st_b,
           b.household_no AS hh_b, b.registered_at AS rb, b.id18 AS ib, p.match_weight
    FROM chk_pair p
    JOIN k a ON a.source = p.source_l AND a.source_key = p.source_key_l
    JOIN k b ON b.source = p.source_r AND b.source_key = p.source_key_r
    WHERE a.person_id <> b.person_id AND a.household_no <> b.household_no
      AND a.name_pyf = b.name_pyf AND a.birth_date = b.birth_date AND a.sex = b.sex
      AND (a.registry_status = '正常' OR b.registry_status = '正常')),
paired AS (
    SELECT 'pair:' || pa || '+' || pb AS subject, pa AS person_id,
           min(least(sa || ':' || ka, sb || ':' || kb)) AS subject_key,
           list_sort(list_distinct(flatten(list([struct_pack(source := sa, source_key := ka,
                                                             row_hash := ha),
                                                 struct_pack(source := sb, source_key := kb,
                                                             row_hash := hb)])))) AS records,
           struct_pack(basis := '疑似同一人（姓名、出生日期、性别一致，身份证号不同），待复核',
                       registrations := count(*) + 1,
                       active := count(*) FILTER (WHERE st_a = '正常')
                                 + count(*) FILTER (WHERE st_b = '正常'),
                       households := min(least(hh_a, hh_b)) || ',' || max(greatest(hh_a, hh_b)),
                       id_numbers := CASE WHEN bool_and(ia IS DISTINCT FROM ib) THEN 2 ELSE 1 END,
                       match_weight := round(max(match_weight), 2)) AS detail,
           max(greatest(ra, rb)) AS event_date
    FROM pr GROUP BY pa, pb)
SELECT subject, person_id, subject_key, records, detail, NULL::DECIMAL(18,2) AS amount_monthly,
       NULL::DECIMAL(18,2) AS amount_total, NULL::INTEGER AS months, event_date
FROM (SELECT * FROM linked UNION ALL SELECT * FROM paired)
""",
    columns_zh={"basis": "认定依据", "registrations": "登记数", "active": "有效登记数",
                "households": "户号", "id_numbers": "身份证号码个数", "match_weight": "匹配权重"},
)

DEATH_NOT_CANCELLED = Rule(
    id="death_not_cancelled",
    title_zh="死亡未注销户口",
    description_zh="有死亡医学证明或火化登记的人员，死亡超过N天后户口仍为正常状态。",
    department="public_security", department_zh="公安局", severity="medium",
    sql="""
SELECT r.person_id AS subject, r.person_id, min(r.source || ':' || r.source_key) AS subject_key,
       list_distinct(first(d.records) || list(struct_pack(source := r.source,
           source_key := r.source_key, row_hash := r.row_hash))) AS records,
       struct_pack(death_date := first(d.death_date), death_evidence := first(d.evidence_kinds),
                   days_since_death := ({business_date} - first(d.death_date))::INTEGER,
                   active_registrations := count(*)) AS detail,
       NULL::DECIMAL(18,2) AS amount_monthly, NULL::DECIMAL(18,2) AS amount_total,
       NULL::INTEGER AS months, first(d.death_date) AS event_date
FROM chk_rec r JOIN chk_death d USING (person_id)
WHERE r.kind = 'household_registry' AND r.registry_status = '正常' AND d.direct
  AND d.death_date <= {business_date} - INTERVAL ({days}) DAY
  AND """ + agrees("r", "d.ids", "d.idents") + """
GROUP BY r.person_id
""",
    params={"days": 30},
    columns_zh={"death_date": "死亡日期", "death_evidence": "死亡证据",
                "days_since_death": "死亡天数", "active_registrations": "有效户籍登记数"},
)

BIRTH_NOT_REGISTERED = Rule(
    id="birth_not_registered",
    title_zh="出生未落户",
    description_zh="出生医学证明签发后超过N天，仍无该儿童的户籍登记（既未关联到户籍记录，"
                   "父母户内也无同一出生日期的登记）。",
    department="public_security", department_zh="公安局", severity="medium",
    sql="""
WITH b AS (
    SELECT * FROM chk_rec
    WHERE kind = 'birth_certificate' AND birth_date <= {business_date} - INTERVAL ({days}) DAY),
registered AS (SELECT DISTINCT person_id FROM chk_rec WHERE kind = 'household_registry'),
family AS (SELECT DISTINCT household_no, birth_date FROM chk_rec
           WHERE kind = 'household_registry' AND household_no IS NOT NULL)
SELECT b.person_id AS subject, b.person_id, min(b.source || ':' || b.source_key) AS subject_key,
       list(struct_pack(source := b.source, source_key := b.source_key,
                        row_hash := b.row_hash)) AS records,
       struct_pack(birth_date := min(b.birth_date),
                   days_since_birth := ({business_date} - min(b.birth_date))::INTEGER,
                   birth_place := min(b.birth_place),
                   parents_household := min(b.family_household_no)) AS detail,
       NULL::DECIMAL(18,2) AS amount_monthly, NULL::DECIMAL(18,2) AS amount_total,
       NULL::INTEGER AS months, min(b.birth_date) AS event_date
FROM b
WHERE b.person_id NOT IN (SELECT person_id FROM registered)
  AND NOT EXISTS (SELECT 1 FROM family f WHERE f.household_no = b.family_household_no
                  AND f.birth_date = b.birth_date)
GROUP BY b.person_id
""",
    params={"days": 90},
    columns_zh={"birth_date": "出生日期", "days_since_birth": "出生天数",
                "birth_place": "出生地点", "parents_household": "父母户号"},
)

ID_CONFLICT = Rule(
    id="id_conflict",
    title_zh="身份证号码冲突（重号）",
    description_zh="同一个公民身份号码出现在不同人的记录上（重号，或录入错误恰好落在他人号码上）。",
    department="public_security", department_zh="公安局", severity="medium",
    subject="id_number",
    sql="""
WITH k AS (SELECT * FROM chk_rec WHERE id_ok AND id18 IS NOT NULL),
c AS (
    SELECT id18 FROM k GROUP BY id18
    HAVING min(person_id) <> max(person_id)
        OR min(name_pyf) FILTER (WHERE NOT coalesce(name_unknown, FALSE))
           <> max(name_pyf) FILTER (WHERE NOT coalesce(name_unknown, FALSE))),
r AS (SELECT k.* FROM k SEMI JOIN c USING (id18))
SELECT r.id18 AS subject, min(r.person_id) AS person_id, NULL::VARCHAR AS subject_key,
       list(struct_pack(source := r.source, source_key := r.source_key, row_hash := r.row_hash)
            ORDER BY r.source, r.source_key) AS records,
       struct_pack(persons := count(DISTINCT r.person_id),
                   person_ids := string_agg(DISTINCT r.person_id, ',' ORDER BY r.person_id),
                   names := count(DISTINCT r.name_pyf),
                   sources := string_agg(DISTINCT r.source, ',' ORDER BY r.source),
                   records := count(*)) AS detail,
       NULL::DECIMAL(18,2) AS amount_monthly, NULL::DECIMAL(18,2) AS amount_total,
       NULL::INTEGER AS months, max(r.record_time)::DATE AS event_date
FROM r
GROUP BY r.id18
""",
    columns_zh={"persons": "涉及人数", "person_ids": "涉及人员编号", "names": "不同姓名数",
                "sources": "来源系统", "records": "记录数"},
)

RULES: tuple[Rule, ...] = (DECEASED_PENSIONER, WANTED_PERSON_SEEN, DECEASED_SUBSIDY,
                           DUPLICATE_REGISTRATION, DEATH_NOT_CANCELLED, BIRTH_NOT_REGISTERED,
                           ID_CONFLICT)
"""Every rule, in report order."""

RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
"""Rule id -> rule."""
