"""Every rate the synthetic city generator uses, in one frozen dataclass.

Rates are probabilities per record (or per person / household where the field says so). The
defaults are realistic but make linking a challenge: the grid workers' collection is the
messiest source. Hard errors (rows validation quarantines) are rare: 0.03-0.1 % of a source's
rows, none in the wanted list (a database table with its constraints). Tests compare measured
rates in the exports with these values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class SourceErrors:
    """Error rates of one department's export (each a probability per record)."""

    id_missing: float = 0.0
    """ID number left empty."""
    id_mistyped: float = 0.0
    """One ID digit replaced by another digit (fails the check digit, mostly)."""
    id_transposed: float = 0.0
    """Two adjacent, different ID digits swapped."""
    id_lowercase_x: float = 0.0
    """Of IDs ending in X: written with a lowercase x."""
    id_fullwidth: float = 0.0
    """ID written in full-width digits (１２３…Ｘ)."""
    id_legacy15: float = 0.0
    """Of persons born before 1985: the legacy 15-digit number instead of the 18-digit one."""
    id_excel_number: float = 0.0
    """XLSX only: the ID stored as a number (15 significant digits) or as scientific text."""
    name_homophone: float = 0.0
    """One given-name character replaced by another with the same pinyin."""
    name_traditional: float = 0.0
    """Name written in traditional characters (OpenCC s2t)."""
    name_space: float = 0.0
    """A space inside the name (``王 芳``)."""
    name_dot_variant: float = 0.0
    """Of transliterated minority names: the middle dot U+00B7 replaced by ・ • . or nothing."""
    phone_missing: float = 0.0
    """Phone number left empty (sources with a phone column)."""
    phone_mistyped: float = 0.0
    """One phone digit wrong."""
    phone_formatted: float = 0.0
    """Phone written with spaces, hyphens or a +86 prefix."""
    date_missing: float = 0.0
    """Birth date left empty (sources where it is optional)."""

    # Hard errors (badrows.py): validation quarantines these rows. Planted only on records that
    # carry no anomaly; recorded in truth/bad_rows.parquet. One kind per row at most.
    key_blank: float = 0.0
    """HARD: the key column left empty (``key_missing``)."""
    required_blank: float = 0.0
    """HARD: a required non-key field left empty: name, registry status, grid code, amount ...
    (the contract's ``required: true``; ``required_missing``)."""
    date_unparseable: float = 0.0
    """HARD: the required date or month typed as garbage: ``1985-02-30``, ``0000-00-00``,
    ``19851345``, ``不详`` (``unparseable``)."""
    row_twice: float = 0.0
    """HARD: the row exported twice, the copy right after it (``duplicate_key`` on the copy)."""
    key_reused: float = 0.0
    """HARD: the key of an earlier row reused on another person's row (``duplicate_key``)."""


@dataclass(frozen=True)
class GeneratorConfig:
    """The synthetic city's shape and every planted error and anomaly rate.

    Population shares are per person unless the field says household. Anomaly rates are per
    eligible person (e.g. ``deceased_pensioner`` per dead pensioner).
    """

    day1: date = date(2026, 11, 20)
    """Business date of day 1; day N is day1 + N - 1."""
    district_weights: tuple[float, float, float, float, float] = (0.32, 0.25, 0.08, 0.07, 0.28)
    """Population share of 西陵, 伍家岗, 点军, 猇亭, 夷陵."""
    persons_per_community: int = 4000
    persons_per_grid: int = 700
    vacancy_rate: float = 0.10
    """Share of houses nobody lives in."""
    migrant_household_rate: float = 0.07
    """Households registered elsewhere (流动人口): no registry row, IDs from other counties."""
    born_elsewhere_rate: float = 0.15
    """Registered residents whose ID was issued in another county."""
    household_moved_rate: float = 0.07
    """Registered households living at another house than where they are registered."""
    person_moved_rate: float = 0.03
    """Single persons living away from their household's house."""
    minority_household_rate: float = 0.02
    """Uyghur / Kazakh households with transliterated names (买买提·艾力)."""
    rare_char_rate: float = 0.002
    """Persons with a rare given-name character outside GBK (䶮 ...)."""
    died_recently_rate: float = 0.025
    """Persons (age-weighted) who died in the last three years."""
    death_cert_rate: float = 0.9
    """Dead persons with a health death certificate."""
    cremation_rate: float = 0.8
    """Dead persons with a cremation record."""
    death_not_cancelled_rate: float = 0.08
    """Dead persons with death evidence whose registration is still 正常 (anomaly)."""
    pension_rate: float = 0.88
    """Registered persons of retirement age (men 60, women 55) drawing a pension."""
    pension_legacy_age: int = 1985
    """Persons born before this year may carry a 15-digit ID (see SourceErrors.id_legacy15)."""
    deceased_pensioner_rate: float = 0.12
    """Dead pensioners whose pension kept being paid after the death month (anomaly)."""
    pension_suspended_rate: float = 0.01
    """Living pensioners with status 暂停."""
    subsidy_household_rate: float = 0.03
    """Registered households on subsistence allowance (低保)."""
    subsidy_dead_head_rate: float = 0.35
    """Households whose head died that are (were) on subsistence allowance."""
    deceased_subsidy_rate: float = 0.5
    """Of subsidy households whose head died: still paid after the death (anomaly)."""
    wanted_rate: float = 0.001
    """Persons on the wanted list (at least 3)."""
    wanted_grid_rate: float = 0.7
    """Wanted persons seen by a grid worker."""
    duplicate_registration_rate: float = 0.003
    """Persons registered a second time under a second ID number (重户, anomaly)."""
    duplicate_issue_pairs_rate: float = 0.0004
    """Persons who were issued another person's ID number (重号, id_conflict; at least 2)."""
    id_typo_onto_real_rate: float = 0.0005
    """Records whose ID is another real person's number (typo landing on it, id_conflict)."""
    birth_cert_years: int = 3
    """Children born within this many years have a birth certificate."""
    birth_unregistered_rate: float = 0.06
    """Births older than ``birth_register_days`` still without registration (anomaly)."""
    birth_register_days: int = 90
    newborn_unregistered_days: int = 30
    """Births younger than this are mostly not registered yet (not an anomaly)."""
    newborn_unnamed_rate: float = 0.6
    """Birth certificates of children younger than 60 days without a name."""
    grid_coverage: float = 0.7
    """Persons collected by a grid worker."""
    grid_repeat_rate: float = 0.05
    """Collected persons collected a second time (a second record)."""
    daily_birth_rate: float = 3e-5
    """Day N: births per person per day (at least 3)."""
    daily_death_rate: float = 2.5e-5
    """Day N: deaths per person per day (at least 3)."""
    daily_move_rate: float = 5e-5
    """Day N: persons moving house per day (at least 3)."""
    daily_correction_rate: float = 3e-5
    """Day N: registry rows corrected per day (at least 3)."""
    daily_update_rate: float = 0.01
    """Day N: probability per row of the grid collection, registry, pension ledger and
    subsistence roster (per household there) of an everyday update (updates.py). With the life
    events above, day 2 changes about 1 % of all source records; ``unigrid generate --churn``
    overrides it (0: life events only)."""

    registry: SourceErrors = field(default_factory=lambda: SourceErrors(
        id_missing=0.002, id_mistyped=0.005, id_transposed=0.003, id_lowercase_x=0.3,
        id_fullwidth=0.002, id_legacy15=0.15, name_traditional=0.01, name_space=0.01,
        name_dot_variant=0.3, required_blank=0.0002, row_twice=0.0002, key_reused=0.0001))
    wanted: SourceErrors = field(default_factory=lambda: SourceErrors(
        id_mistyped=0.02, name_traditional=0.05, name_dot_variant=0.3))
    cremation: SourceErrors = field(default_factory=lambda: SourceErrors(
        id_missing=0.03, id_mistyped=0.02, id_transposed=0.01, id_lowercase_x=0.3,
        id_excel_number=0.05, name_homophone=0.02, name_traditional=0.01, name_space=0.01,
        name_dot_variant=0.5, phone_missing=0.05, phone_mistyped=0.02, required_blank=0.0003,
        date_unparseable=0.0003, row_twice=0.0002))
    subsidy: SourceErrors = field(default_factory=lambda: SourceErrors(
        id_missing=0.02, id_mistyped=0.02, id_transposed=0.01, id_lowercase_x=0.3,
        id_excel_number=0.05, name_homophone=0.02, name_traditional=0.01, name_space=0.01,
        name_dot_variant=0.5, key_blank=0.0002, required_blank=0.0003, row_twice=0.0002,
        key_reused=0.0001))
    pension: SourceErrors = field(default_factory=lambda: SourceErrors(
        id_missing=0.005, id_mistyped=0.01, id_transposed=0.005, id_lowercase_x=0.5,
        id_legacy15=0.25, name_homophone=0.01, name_space=0.01, name_dot_variant=0.5,
        phone_missing=0.2, phone_mistyped=0.01, required_blank=0.0001, date_unparseable=0.0001,
        row_twice=0.0001))
    birth_cert: SourceErrors = field(default_factory=lambda: SourceErrors(
        id_missing=0.03, id_mistyped=0.02, id_transposed=0.01, id_lowercase_x=0.2,
        name_homophone=0.01, required_blank=0.0001, date_unparseable=0.0002, row_twice=0.0001))
    death_cert: SourceErrors = field(default_factory=lambda: SourceErrors(
        id_missing=0.02, id_mistyped=0.01, id_transposed=0.005, id_lowercase_x=0.2,
        name_homophone=0.01, name_dot_variant=0.3, required_blank=0.0001, date_unparseable=0.0002,
        row_twice=0.0001))
    grid: SourceErrors = field(default_factory=lambda: SourceErrors(
        id_missing=0.10, id_mistyped=0.05, id_transposed=0.02, id_lowercase_x=0.5,
        id_fullwidth=0.02, name_homophone=0.08, name_traditional=0.02, name_space=0.03,
        name_dot_variant=0.7, phone_missing=0.15, phone_mistyped=0.03, phone_formatted=0.10,
        date_missing=0.05, key_blank=0.0002, required_blank=0.0004, row_twice=0.0003,
        key_reused=0.0001))


DEFAULT_CONFIG = GeneratorConfig()
"""The configuration ``generate_city`` uses unless given another."""
