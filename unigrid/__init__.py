"""unigrid: the thin app package (settings, CLI, stage order, later the web service)."""

__version__ = "0.1.0"
