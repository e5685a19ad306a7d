"""pytest-aide: evaluation-driven code optimization inside a pytest suite.

The tree follows the data path, and imports run one way, top to bottom:

- the pytest layer: ``plugin`` (entry point, thin hooks), ``session``, ``settings``; and
  ``api`` (``pytest_aide.optimize``: the same run, started from Python);
- ``run``: one target's run, from the run directory to the written file;
- ``search/``: the AIDE policy and loop, verdicts, noise, confirmation;
- ``proposers/`` and ``evaluation/``: where candidates come from, and how one is judged;
- ``report/``: what a person sees, and the run directory's files;
- shared data, imported by all and importing none of the above: ``study`` (what a marked
  test asks for), ``symbols`` (one function or class inside a module: its span, a skeleton
  of the rest, a new definition spliced in), ``metrics`` (reading a metric off a test),
  ``journal`` (the search tree).
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``pytest_aide.optimize`` and its result type, imported when first used (the plugin
    stays cheap to load)."""
    if name in ("optimize", "OptimizeResult"):
        from pytest_aide import api

        return getattr(api, name)
    raise AttributeError(f"module 'pytest_aide' has no attribute {name!r}")
