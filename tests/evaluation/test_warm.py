"""Warm evaluations: children forked from a sandboxed interpreter that has the tests'
libraries loaded, judged exactly as cold ones, and leaving nothing to the next."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from attacks import STEADY_MODULE, steady_study

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.evaluation.sandbox import choose
from pytest_aide.evaluation.warm import library_imports
from pytest_aide.study import Study

MODULE = STEADY_MODULE.replace("PAUSE = 0.004", "PAUSE = 0.002")

TESTS = """\
import sys

PRELOADED = "numpy" in sys.modules  # before this module imports it: the zygote did

import numpy
import pytest
from steady import work


def test_correct(record_property):
    record_property("preloaded", int(PRELOADED))
    assert work(5) == int(numpy.sum(numpy.arange(5)))


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(work, args=(10,), rounds=6, iterations=1)
"""

#: Leaves a file in /tmp and $HOME and a process behind; the next child looks for them.
LITTERS = """
import os, subprocess, sys
open("/tmp/left-behind", "w").write("x")
open(os.path.expanduser("~/left-behind"), "w").write("x")
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
"""

LOOKS = """
import os, pathlib
FOUND = [p for p in ("/tmp/left-behind", os.path.expanduser("~/left-behind"))
         if os.path.exists(p)]
FOUND += [e.name for e in pathlib.Path("/proc").iterdir() if e.name.isdigit()
          and b"sleep(60)" in (e / "cmdline").read_bytes()]
if FOUND:
    raise RuntimeError(f"left behind: {FOUND}")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> tuple[pytest.Pytester, Study]:
    return pytester, steady_study(pytester, MODULE, TESTS)


def evaluator(pytester: pytest.Pytester, study: Study, **options) -> Evaluator:
    return Evaluator(study, pytester.path, sandbox=choose("bwrap").sandbox,
                     protected_exclude=[pytester.path / ".aide"], **options)


def preloaded(evaluation) -> int:
    return evaluation.tests["test_steady.py::test_correct"].measurement.properties["preloaded"]


def test_warm_children_have_the_libraries_loaded_and_judge_like_cold_ones(project) -> None:
    pytester, study = project
    warm, cold = evaluator(pytester, study, warm=True), evaluator(pytester, study)
    original = study.target.path.read_text()
    faster = original.replace("PAUSE = 0.002", "PAUSE = 0.0005")
    wrong = faster.replace("total += i", "total -= i")
    try:
        results = {}
        for name, chosen in (("warm", warm), ("cold", cold)):
            root = pytester.path / ".aide" / name
            results[name] = [chosen.evaluate(code, root / str(i), baseline=None)
                             for i, code in enumerate((None, faster, wrong))]
        assert warm.warm_notice == ""
    finally:
        warm.close()
    for name, (baseline, fast, bad) in results.items():
        assert baseline.completed and fast.completed and bad.completed, name
        assert [e.tampered for e in (baseline, fast, bad)] == [[], [], []], name
        assert baseline.not_passed(study.nodeids) == fast.not_passed(study.nodeids) == []
        assert bad.not_passed(study.nodeids) == ["test_steady.py::test_correct"]
        objective = study.objectives[0]
        assert fast.metric(objective) < baseline.metric(objective) / 2
        assert set(baseline.clock) == {"test_steady.py::test_speed"}
    assert [preloaded(e) for e in results["warm"][:2]] == [1, 1]
    assert [preloaded(e) for e in results["cold"][:2]] == [0, 0]


def test_a_warm_child_leaves_nothing_to_the_next(project) -> None:
    pytester, study = project
    warm = evaluator(pytester, study, warm=True)
    original = study.target.path.read_text()
    try:
        first = warm.evaluate(LITTERS + original, pytester.path / ".aide" / "1", baseline=None)
        second = warm.evaluate(LOOKS + original, pytester.path / ".aide" / "2", baseline=None)
    finally:
        warm.close()
    assert first.completed and first.not_passed(study.nodeids) == []
    assert second.completed, second.output_tail
    assert second.not_passed(study.nodeids) == [], second.error_summary(study.nodeids)
    assert preloaded(second) == 1


def test_a_warm_child_that_hangs_times_out_and_the_next_starts_warm_again(project) -> None:
    pytester, study = project
    warm = evaluator(pytester, study, warm=True, timeout=5)
    original = study.target.path.read_text()
    try:
        hung = warm.evaluate(original.replace("    total = 0", "    time.sleep(60)\n    total = 0"),
                             pytester.path / ".aide" / "1", baseline=None)
        after = warm.evaluate(None, pytester.path / ".aide" / "2", baseline=None)
    finally:
        warm.close()
    assert hung.status == "timeout" and hung.duration < 30
    assert after.completed and after.not_passed(study.nodeids) == [] and preloaded(after) == 1


def test_where_forking_is_unsafe_evaluations_start_cold_and_say_why(
    project, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester, study = project
    library = pytester.path.parent / "library"
    library.mkdir()
    (library / "threaded.py").write_text(textwrap.dedent("""
        import threading, time
        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
    """))
    monkeypatch.syspath_prepend(str(library))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(library),
                                                      os.environ.get("PYTHONPATH", "")]))
    test_file = pytester.path / "test_steady.py"
    test_file.write_text("import threaded\n" + test_file.read_text())
    warm = evaluator(pytester, study, warm=True)
    try:
        evaluation = warm.evaluate(None, pytester.path / ".aide" / "1", baseline=None)
    finally:
        warm.close()
    assert evaluation.completed and evaluation.not_passed(study.nodeids) == []
    assert preloaded(evaluation) == 0
    assert "thread(s) started while importing" in warm.warm_notice


def test_the_zygote_imports_the_libraries_not_the_project(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("")
    (tmp_path / "test_x.py").write_text(
        "import os, json\nimport numpy as np\nfrom helpers import x\nfrom steady import work\n"
        "from . import sibling\nimport pytest\n"
    )
    found = library_imports([tmp_path / "test_x.py"], tmp_path, "steady")
    assert found == ["os", "json", "numpy", "pytest"]
