"""pytest-aide's pytest plugin: options, the marker, and thin hooks.

Everything stateful lives in :mod:`pytest_aide.session`; nothing heavy is imported here,
so an inert plugin costs nothing.
"""

from __future__ import annotations

import pytest

from pytest_aide.evaluation import WORKER_PLUGIN
from pytest_aide.settings import add_options

MARKER_HELP = (
    "optimize(metric, maximize=None, target=None): let pytest-aide optimize the target "
    "module for this test's metric (a pytest-benchmark statistic such as 'mean', or a value "
    "recorded with record_property); run with --aide-steps N to search."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    if config.pluginmanager.hasplugin(WORKER_PLUGIN):
        return  # inside an evaluation child: the worker plugin does the work
    from pytest_aide.session import AideSession

    config.pluginmanager.register(AideSession(config), AideSession.name)
