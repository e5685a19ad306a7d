"""pytest-aide's pytest plugin: options, the marker, and thin hooks.

Everything stateful lives in :mod:`pytest_aide.session`; nothing heavy is imported here,
so an inert plugin costs nothing. The defaults of pytest-aide's own hooks (hookspecs.py)
are here too, ``trylast``, each importing its backend only when it is called.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_aide.evaluation import WORKER_PLUGIN
from pytest_aide.settings import AideSettings, add_options

if TYPE_CHECKING:
    from pytest_aide.evaluation.evaluator import Evaluator
    from pytest_aide.evaluation.sandbox import SandboxChoice
    from pytest_aide.executors.base import Executor
    from pytest_aide.proposers.base import Proposer
    from pytest_aide.study import Study

MARKER_HELP = (
    "optimize(metric, maximize=None, target=None, inputs=None, compare=None, rtol=None, "
    "atol=None): let pytest-aide optimize the target module for this test's metric (a "
    "pytest-benchmark statistic such as 'mean', or a value recorded with record_property); "
    "candidates must give the original's answers (compare; by default only when a speed is "
    "measured), within rtol/atol for floats; run "
    "with --aide-steps N to search."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_aide import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    if config.pluginmanager.hasplugin(WORKER_PLUGIN):
        return  # inside an evaluation child: the worker plugin does the work
    from pytest_aide.session import AideSession

    config.pluginmanager.register(AideSession(config), AideSession.name)


# -- the defaults of pytest-aide's hooks ----------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_aide_make_proposer(
    config: pytest.Config, settings: AideSettings, original_code: str, study: Study,
    notify: Callable[[str], None],
) -> Proposer:
    """The tuner or the LLM that ``--aide-model`` and the environment choose."""
    from pytest_aide.proposers.select import make_proposer

    proposer, notice = make_proposer(settings, original_code,
                                     relpaths=study.relpaths(config.rootpath))
    if notice:
        notify(notice)
    return proposer


@pytest.hookimpl(trylast=True)
def pytest_aide_make_executor(settings: AideSettings, evaluator: Evaluator) -> Executor:
    """This machine (one worker, or slots), or Ray (``--aide-executor``)."""
    from pytest_aide.executors.choose import make_executor

    return make_executor(settings, evaluator)


@pytest.hookimpl(trylast=True)
def pytest_aide_make_sandbox(settings: AideSettings, rootdir: Path) -> SandboxChoice:
    """Bubblewrap, or none with a notice, as ``--aide-sandbox`` says."""
    from pytest_aide.evaluation.sandbox import choose

    return choose(settings.sandbox, settings.network, rootdir)
