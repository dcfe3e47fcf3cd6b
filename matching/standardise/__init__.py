"""Standardisers: pure, vectorised functions over pandas Series (same index in and out, nulls in ->
nulls out) that bring departments' identity fields to one form before matching.

Modules: ``ids`` (resident ID numbers), ``dates`` (dates, months, timestamps), ``sex``,
``names`` (normalisation, surname-aware pinyin), ``phones``, ``addresses`` (house key).
Import the module you need; this package imports nothing heavy. See docs/standardisers.md.
"""
