"""A resumed run holds its candidates to the original's baseline, as a fresh run does.

The baseline (the original's fingerprints, clock brackets and guards) is a value the run keeps
in its directory. Before, the evaluator learnt it from the first trusted evaluation it ran, and
a resumed run runs none: a candidate that replaced a comparator the tests use passed there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from llm_fake import FakeProvider, code_reply, run_with, use_fake_openai

from pytest_aide.journal import Journal, Node, Status

MODULE = """\
import numpy as np


def scale(values, k):
    return np.asarray(values, dtype=float) * k
"""

TESTS = """\
import numpy as np
import pytest
from calc import scale


def test_scale():
    assert np.allclose(scale([1, 2, 3], 2), [2, 4, 6])


@pytest.mark.optimize(metric="{metric}", maximize={maximize})
def test_metric({fixture}):
    {body}
"""

BODIES = {
    # untimed: a score the test records
    "score": ("record_property", "record_property('score', float(np.sum(scale([1.0], 1.0))))"),
    # timed: a benchmark statistic
    "mean": ("benchmark",
             "benchmark.pedantic(scale, args=([1.0] * 100, 2.0), rounds=10, iterations=1)"),
}

HARMLESS = MODULE + "\n# the same code, with a comment\n"
#: Replaces the comparator the tests trust, and computes the wrong answer.
CHEAT = """\
import numpy as np

np.allclose = lambda *args, **kwargs: True


def scale(values, k):
    return np.asarray(values, dtype=float) * (k + 1)
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, request):
    metric = request.param
    fixture, body = BODIES[metric]
    maximize = "True" if metric == "score" else "None"
    pytester.makepyfile(calc=MODULE, test_calc=TESTS.format(
        metric=metric, maximize=maximize, fixture=fixture, body=body))
    pytester.makeini("[pytest]\npythonpath = .\n")
    use_fake_openai(monkeypatch)
    return pytester


def run(pytester: pytest.Pytester, fake: FakeProvider, *args: str):
    return run_with(pytester, fake, "--aide-sandbox", "off", "--aide-preserve-source", *args)


def journal_of(pytester: pytest.Pytester) -> Journal:
    (path,) = pytester.path.glob(".aide/*/journal.json")
    return Journal.load(path)


@pytest.mark.parametrize("project", ["score", "mean"], indirect=True)
@pytest.mark.parametrize("saved", [True, False], ids=["baseline saved", "older run without"])
def test_a_resumed_run_flags_a_patched_comparator_as_a_fresh_run_does(
    project: pytest.Pytester, httpserver, saved: bool
) -> None:
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(HARMLESS, "a comment")), fake.text(code_reply(CHEAT, "cheat")))
    first = run(project, fake, "--aide-steps", "1")
    assert first.ret == 0, first.stdout.str()
    journal = journal_of(project)
    run_dir = project.path / ".aide" / journal.run_id
    saved_baseline = json.loads((run_dir / "baseline.json").read_text())
    assert set(saved_baseline["guards"]) == {"test_calc.py::test_scale",
                                             "test_calc.py::test_metric"}
    assert saved_baseline["state"], "the original's fingerprints are kept with the run"
    if not saved:
        (run_dir / "baseline.json").unlink()  # as a run made before baselines were saved

    resumed = run(project, fake, "--aide-steps", "2", "--aide-resume", "latest")
    output = resumed.stdout.str()
    assert resumed.ret == 0, output
    assert ("the original was measured again" in output) is not saved
    cheat = journal_of(project).nodes[2]
    assert cheat.status == Status.TAMPERED, (cheat.status, cheat.error)
    assert "numpy.allclose" in cheat.error, cheat.error

    # the same candidate in a fresh run: the same finding
    shutil.rmtree(project.path / ".aide")
    fake.push(fake.text(code_reply(CHEAT, "cheat")))
    fresh = run(project, fake, "--aide-steps", "1")
    assert fresh.ret == 0, fresh.stdout.str()
    node = journal_of(project).nodes[1]
    assert node.status == Status.TAMPERED and "numpy.allclose" in node.error, node.error


OLD_RUN = Path(__file__).parent / "data" / "v1_run"


def test_a_run_made_before_journal_version_2_resumes(pytester: pytest.Pytester) -> None:
    journal = json.loads((OLD_RUN / "journal.json").read_text())
    assert journal["version"] == 1 and "duplicate_of" not in journal["nodes"][0]
    # byte for byte: the journal holds the original's digest
    (pytester.path / "steady.py").write_bytes((OLD_RUN / "steady.txt").read_bytes())
    (pytester.path / "test_steady.py").write_bytes((OLD_RUN / "steady_tests.txt").read_bytes())
    pytester.makeini("[pytest]\npythonpath = .\n")
    run_dir = pytester.path / ".aide" / journal["run_id"]
    run_dir.mkdir(parents=True)
    (run_dir / "journal.json").write_text((OLD_RUN / "journal.json").read_text())
    result = pytester.runpytest_subprocess(
        "--aide-steps", "3", "--aide-resume", journal["run_id"], "--aide-model", "tune",
        "--aide-sandbox", "off", "--aide-preserve-source", "-p", "no:cacheprovider")
    output = result.stdout.str()
    assert result.ret == 0, output
    assert "resuming run " + journal["run_id"] + ": 2 of 3 steps done" in output
    assert "the original was measured again" in output  # it saved no baseline
    resumed = json.loads((run_dir / "journal.json").read_text())
    assert resumed["version"] == 2 and len(resumed["nodes"]) == 4
    assert all("duplicate_of" in n and "note" in n for n in resumed["nodes"])
    assert (run_dir / "baseline.json").is_file()


def test_an_older_journal_is_read_as_version_2_writes_it() -> None:
    old = {"id": 3, "parent": 0, "step": 3, "operator": "draft", "plan": "", "code": "x",
           "status": "buggy", "error": "candidate is identical to node 1: nothing changed"}
    slower = {**old, "id": 4, "status": "good", "error": "improvement within noise"}
    assert Node.from_dict(old, version=1).duplicate_of == 1
    node = Node.from_dict(slower, version=1)
    assert (node.note, node.error, node.duplicate_of) == ("improvement within noise", "", None)
    assert Node.from_dict(slower).error == "improvement within noise"  # version 2 as it is
