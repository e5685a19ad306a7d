"""pytest-aide's own hooks: the places where a conftest or a plugin supplies its backend.

Each hook is ``firstresult``: the first implementation that returns something other than
None wins, and today's backends are registered by ``plugin.py`` as ``trylast`` defaults, as
pytest-xdist does with ``pytest_xdist_make_scheduler``. A conftest that wants another
proposer, executor or sandbox implements the hook and returns its own; returning None
leaves the choice to the default. Nothing is imported here: loading the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_aide.evaluation.evaluator import Evaluator
    from pytest_aide.evaluation.sandbox import SandboxChoice
    from pytest_aide.executors.base import Executor
    from pytest_aide.proposers.base import Proposer
    from pytest_aide.settings import AideSettings
    from pytest_aide.study import Study


@pytest.hookspec(firstresult=True)
def pytest_aide_make_proposer(
    config: pytest.Config,
    settings: AideSettings,
    original_code: str,
    study: Study,
    notify: Callable[[str], None],
) -> Proposer | None:
    """Make the proposer that writes the candidates of ``study``'s target (proposers/base.py
    states what a proposer promises).

    ``original_code``: the target's source the search starts from; with several targets
    (``target=[...]``) every file's, as ``pytest_aide.sources.Sources`` stores them
    (``Sources.decode(original_code, study.relpaths(config.rootpath))``), and each proposal's
    code must be in that form too. ``notify(text)`` shows a
    one-line notice in the terminal (e.g. which model was picked and why). Called before
    anything runs, so that a configuration problem raised here as
    ``pytest_aide.proposers.base.ProposerConfigError`` is a usage error. Default: the
    built-in tuner or the LLM that ``--aide-model`` and the environment choose.
    """


@pytest.hookspec(firstresult=True)
def pytest_aide_make_executor(
    config: pytest.Config, settings: AideSettings, evaluator: Evaluator
) -> Executor | None:
    """Make the executor that runs the run's evaluations (executors/base.py: ``run_shared``,
    ``run_isolated``), one or several at once (``--aide-workers``, ``--aide-gpus-per-worker``,
    ``--aide-executor``); each runs through ``evaluator``.

    Called for every run, the serial one included (one local worker). Raise
    ``pytest_aide.executors.base.ExecutorError`` when it cannot be had (a usage error).
    Default: this machine (one worker, or disjoint slots), or a Ray cluster.
    """


@pytest.hookspec(firstresult=True)
def pytest_aide_make_sandbox(
    config: pytest.Config, settings: AideSettings, rootdir: Path
) -> SandboxChoice | None:
    """Choose the OS sandbox the session's evaluations run in, once per session.

    Return a ``pytest_aide.evaluation.sandbox.SandboxChoice``: its ``sandbox`` (None: no
    sandbox) and a ``notice`` shown in the header and the summary. Returning None means
    "no opinion", not "no sandbox": say ``SandboxChoice(None, notice)`` for that. Raise
    ``SandboxUnavailable`` when the sandbox asked for cannot be had (a usage error).
    Default: ``--aide-sandbox`` (bubblewrap when it works here).
    """
