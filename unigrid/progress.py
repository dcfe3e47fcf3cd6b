"""Progress reporting without coupling domain code to a terminal.

Long-running functions take an optional ``progress: Progress`` callback and call
``progress(step, done, total)``; the CLI passes a rich progress bar, tests and Airflow pass
nothing (or a logger).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Callback: ``step`` is a short English label, ``done``/``total`` are unit counts."""

    def __call__(self, step: str, done: int, total: int) -> None: ...


def no_progress(step: str, done: int, total: int) -> None:
    """A progress callback that does nothing."""
