"""Synthetic city generator: a population in houses and grids, each department's export in its
own shape (with the errors real data has), and the ground truth beside them.

Entry point: :func:`generate_city` (``unigrid generate`` calls it). Rates: :class:`GeneratorConfig`.
See docs/generator.md and docs/sources.md.
"""

from unigrid.synthetic.city import business_date, generate_city
from unigrid.synthetic.config import DEFAULT_CONFIG, GeneratorConfig, SourceErrors
from unigrid.synthetic.sources import KEYS, SOURCES

__all__ = ["generate_city", "business_date", "GeneratorConfig", "SourceErrors", "DEFAULT_CONFIG",
           "SOURCES", "KEYS"]
