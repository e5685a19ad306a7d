"""pytest-aide's own hooks (hookspecs.py): a conftest that implements one replaces the default.

Each run here optimizes a custom metric (no timing, no confirmation rounds), so it is short.
"""

from __future__ import annotations

import json

import pytest

PROJECT = {
    "mod": "VALUE = 1\n",
    "test_mod": (
        "import pytest\n"
        "import mod\n\n\n"
        "@pytest.mark.optimize(metric='score', maximize=True)\n"
        "def test_score(record_property):\n"
        "    record_property('score', mod.VALUE)\n"
    ),
}

SCRIPTED_PROPOSER = '''
import pytest
from pytest_aide.proposers.base import Proposal


class Scripted:
    """Proposes VALUE = 2, then nothing new."""

    name = "scripted"

    def __init__(self, original_code):
        self.original_code = original_code
        self.observed = []

    def propose(self, request):
        return Proposal(plan="two is more", code="VALUE = 2\\n")

    def observe(self, node, proposal):
        self.observed.append(node.id)


def pytest_aide_make_proposer(config, settings, original_code, study, notify):
    notify(f"scripted proposer for {study.target.module}")
    return Scripted(original_code)
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**PROJECT)
    pytester.makeini("[pytest]\npythonpath = .\n")
    return pytester


def _journal(pytester: pytest.Pytester) -> dict:
    (path,) = (pytester.path / ".aide").glob("*/journal.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_conftest_proposer_replaces_the_default(project: pytest.Pytester) -> None:
    project.makeconftest(SCRIPTED_PROPOSER)
    result = project.runpytest_subprocess("--aide-steps", "1", "--aide-sandbox", "off")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "aide: scripted proposer for mod",
        "aide: optimizing mod.py for * with scripted; *",
    ])
    assert "built-in offline tuner" not in result.stdout.str()  # the default was not asked
    assert (project.path / "mod.py").read_text() == "VALUE = 2\n"
    journal = _journal(project)
    assert journal["settings"]["proposer"] == "scripted"
    assert [node["plan"] for node in journal["nodes"]][1:] == ["two is more"]


def test_a_conftest_proposer_returning_none_leaves_the_default(
    project: pytest.Pytester,
) -> None:
    project.makeconftest(
        "def pytest_aide_make_proposer(config, settings, original_code):\n"
        "    return None\n"
    )
    result = project.runpytest_subprocess(
        "--aide-steps", "1", "--aide-model", "tune", "--aide-sandbox", "off"
    )
    result.stdout.fnmatch_lines(["aide: optimizing mod.py for * with *tune*"])
    assert _journal(project)["settings"]["proposer"] == "tune"


def test_a_conftest_sandbox_and_executor_are_used(project: pytest.Pytester) -> None:
    """The sandbox hook's choice is the session's (its notice shown); the executor hook is
    asked when the settings want more than the serial path, and its executor runs them."""
    project.makeconftest(SCRIPTED_PROPOSER + '''

from pytest_aide.evaluation.sandbox import SandboxChoice
from pytest_aide.executors.choose import make_executor

CALLS = []


class Named:
    """The default executor under another name."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def describe(self):
        return "the conftest's executor"


def pytest_aide_make_sandbox(config, settings, rootdir):
    return SandboxChoice(None, "no sandbox: the conftest says so")


def pytest_aide_make_executor(config, settings, evaluator):
    CALLS.append(settings.workers)
    return Named(make_executor(settings, evaluator))


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"executor hook calls: {CALLS}")
''')
    result = project.runpytest_subprocess(
        "--aide-steps", "1", "--aide-workers", "2", "--aide-measure", "shared"
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "aide: no sandbox: the conftest says so",
        "aide: 2 workers (the conftest's executor); *",
        "executor hook calls: [2]",
    ])
    assert _journal(project)["settings"]["sandbox"] == "off"


def test_the_hooks_are_first_result_with_trylast_defaults(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig()
    for name in ("pytest_aide_make_proposer", "pytest_aide_make_executor",
                 "pytest_aide_make_sandbox"):
        caller = getattr(config.hook, name)
        assert caller.spec.opts["firstresult"], name
        defaults = [impl for impl in caller.get_hookimpls()
                    if impl.plugin_name == "aide"]
        assert len(defaults) == 1 and defaults[0].trylast, name
