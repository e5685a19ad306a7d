"""pytest-aide: evaluation-driven code optimization inside a pytest suite."""

__version__ = "0.1.0"
