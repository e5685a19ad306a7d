"""State the tests rely on stays as it was: what the tests compare with, and the interpreter.

Each hostile candidate here is correct on the tests' own terms only because it changed the
thing the tests compare with; each is caught by comparing the child's fingerprints with the
baseline's (at import) or a test's before and after (during the test).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from attacks import baseline_of

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.guards.fingerprint import changed_since_baseline, digests, new_changes
from pytest_aide.study import Study, Target

ORIGINAL = """\
def mean(values):
    return sum(values) / len(values)
"""

REFERENCE = """\
def expected_mean(values):
    return sum(values) / len(values)
"""

TESTS = """\
import math
import statistics

import numpy as np
import pytest

import reference
from stats import mean


def test_against_numpy():
    assert np.allclose(mean([1.0, 2.0, 4.0]), 7 / 3)


def test_against_approx():
    assert mean([1.0, 2.0]) == pytest.approx(1.5)


def test_against_statistics():
    assert math.isclose(mean([2.0, 4.0]), statistics.mean([2.0, 4.0]))


def test_against_reference():
    assert mean([1.0, 5.0]) == reference.expected_mean([1.0, 5.0])


def test_with_abs():
    assert abs(mean([1.0, 3.0]) - 2.0) < 1e-9
"""

WRONG = "\ndef mean(values):\n    return 0.0\n"

#: Each attack makes the wrong mean above pass the test it names.
ATTACKS = {
    "numpy's allclose": "import numpy\nnumpy.allclose = lambda *a, **k: True\n",
    # wherever pytest keeps it (_pytest.python_api before 9.1, _pytest.approx since)
    "pytest.approx's comparison": (
        "import pytest\ntype(pytest.approx(1.0)).__eq__ = lambda self, other: True\n"
    ),
    "statistics": "import statistics\nstatistics.mean = lambda data: 0.0\n",
    "the reference module": (
        "import reference\nreference.expected_mean = lambda values: 0.0\n"
    ),
    "a name in the test module": (
        "import sys\nsys.modules['test_stats'].abs = lambda x: 0.0\n"
    ),
    "the reference module's code": (
        "import reference\nreference.expected_mean.__code__ = (lambda values: 0.0).__code__\n"
    ),
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(stats=ORIGINAL, reference=REFERENCE, test_stats=TESTS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    return pytester


def evaluator_of(pytester: pytest.Pytester) -> Evaluator:
    names = ["test_against_numpy", "test_against_approx", "test_against_statistics",
             "test_against_reference", "test_with_abs"]
    study = Study(target=Target("stats", pytester.path / "stats.py"), objectives=[],
                  guard_nodeids=[f"test_stats.py::{n}" for n in names])
    return Evaluator(study, pytester.path, protected_exclude=[pytester.path / ".aide"])


def test_each_attack_at_import_is_tampering(project: pytest.Pytester) -> None:
    evaluator = evaluator_of(project)
    baseline = evaluator.evaluate(None, project.path / ".aide" / "base", baseline=None)
    assert baseline.completed and not baseline.tampered, baseline.error_summary([])
    honest = evaluator.evaluate(ORIGINAL.replace("sum(values)", "float(sum(values))"),
                                project.path / ".aide" / "honest", baseline=baseline_of(baseline))
    assert honest.tampered == [] and honest.not_passed(evaluator.study.nodeids) == []
    for number, (what, attack) in enumerate(ATTACKS.items()):
        evaluation = evaluator.evaluate(attack + WRONG, project.path / ".aide" / f"a{number}",
            baseline=baseline_of(baseline))
        # the attack ran (a stale one that fails at import would be caught for nothing)
        assert evaluation.tests, f"{what}: did not import: {evaluation.output_tail[-500:]}"
        changes = [t for t in evaluation.findings_text if "changed" in t]
        assert changes, f"{what}: not caught; tampered={evaluation.tampered}"


def test_interpreter_settings_changed_at_import_are_tampering(project: pytest.Pytester) -> None:
    evaluator = evaluator_of(project)
    base = evaluator.evaluate(None, project.path / ".aide" / "base", baseline=None)
    quiet_gc = "import gc\ngc.disable()\n" + ORIGINAL
    evaluation = evaluator.evaluate(quiet_gc, project.path / ".aide" / "gc",
        baseline=baseline_of(base))
    assert any("interpreter: gc enabled" in t for t in evaluation.findings_text), (
        evaluation.tampered)
    path = "import sys\nsys.path.insert(0, '/nowhere')\n" + ORIGINAL
    evaluation = evaluator.evaluate(path, project.path / ".aide" / "path",
        baseline=baseline_of(base))
    assert any("interpreter: sys.path" in t for t in evaluation.findings_text), evaluation.tampered


def test_a_change_made_during_a_test_is_named_with_the_test(project: pytest.Pytester) -> None:
    evaluator = evaluator_of(project)
    base = evaluator.evaluate(None, project.path / ".aide" / "base", baseline=None)
    sneaky = textwrap.dedent("""
        import gc

        def mean(values):
            gc.disable()  # the collector stays off for whatever is measured next
            return sum(values) / len(values)
    """)
    evaluation = evaluator.evaluate(sneaky, project.path / ".aide" / "during",
        baseline=baseline_of(base))
    found = [t for t in evaluation.findings_text if "interpreter: gc enabled" in t]
    assert found and "test_stats.py::test_against_numpy" in found[0], evaluation.tampered


def test_a_replacement_that_claims_to_equal_the_original_is_still_a_change(
    project: pytest.Pytester,
) -> None:
    """Before and after a test, objects are compared by identity: a planted import hook or
    signal handler whose ``__eq__`` says it is the old one does not pass for it."""
    evaluator = evaluator_of(project)
    base = evaluator.evaluate(None, project.path / ".aide" / "base", baseline=None)
    liar = textwrap.dedent("""
        import signal
        import sys

        class Same:
            def __init__(self, wrapped):
                self.wrapped = wrapped
            def __eq__(self, other):
                return True
            __hash__ = object.__hash__
            def __call__(self, *args):
                return None
            def __getattr__(self, name):
                return getattr(self.wrapped, name)

        def mean(values):
            if not isinstance(sys.meta_path[-1], Same):
                sys.meta_path[-1] = Same(sys.meta_path[-1])
                signal.signal(signal.SIGUSR2, Same(signal.getsignal(signal.SIGUSR2)))
            return sum(values) / len(values)
    """)
    evaluation = evaluator.evaluate(liar, project.path / ".aide" / "liar",
        baseline=baseline_of(base))
    found = " ".join(t for t in evaluation.findings_text if "changed during" in t)
    assert "interpreter: sys.meta_path" in found, evaluation.tampered
    assert "interpreter: signal handlers" in found, evaluation.tampered


def test_what_the_original_code_changes_itself_is_not_held_against_a_candidate(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        stats="import gc\n\ndef mean(values):\n    gc.disable()\n"
              "    return sum(values) / len(values)\n",
        test_stats="from stats import mean\n\ndef test_mean():\n    assert mean([2.0]) == 2.0\n",
    )
    pytester.makeini("[pytest]\npythonpath = .\n")
    study = Study(target=Target("stats", pytester.path / "stats.py"), objectives=[],
                  guard_nodeids=["test_stats.py::test_mean"])
    evaluator = Evaluator(study, pytester.path)
    base = evaluator.evaluate(None, pytester.path / ".aide" / "base", baseline=None)
    candidate = (pytester.path / "stats.py").read_text().replace("sum(values)", "sum(values) + 0")
    evaluation = evaluator.evaluate(candidate, pytester.path / ".aide" / "same",
        baseline=baseline_of(base))
    assert evaluation.tampered == [], evaluation.tampered


def test_digests_agree_between_processes_and_changes_subtract_the_baselines() -> None:
    script = ("import json, numpy, pytest; from pytest_aide.guards.fingerprint import "
              "digests; print(json.dumps(digests(['numpy', 'pytest', 'builtins'], [], 'x')))")
    first, second = (
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       check=True, env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
        for seed in ("1", "2")
    )
    runs = [json.loads(run) for run in (first, second)]  # the seed's variable differs too
    assert runs[0] == runs[1] and "numpy.allclose" in runs[0]
    here = digests(["builtins"], [], "x")
    assert changed_since_baseline(here, dict(here)) == []
    assert new_changes(["a", "b"], ["b"]) == ["a"]


def test_code_digests_agree_whether_compiled_or_read_from_bytecode(tmp_path: Path) -> None:
    """A set's order follows the hash seed, a string's interning how the code was loaded:
    neither may make the same code look changed in another evaluation."""
    (tmp_path / "shapes.py").write_text(textwrap.dedent("""
        NAMES = ("a", "b")

        def kind(name):
            def inner(x):
                return x in {"circle", "square", "triangle", 1.5}
            return inner(name) or name in ("x", frozenset())

        class Shape:
            def area(self):
                return {"w", "h"} & set(vars(self))
    """))
    script = ("import json, shapes; from pytest_aide.guards.fingerprint import digests; "
              "print(json.dumps(digests(['shapes'], [], 'x')))")
    runs = []
    for seed, no_bytecode in (("1", "1"), ("2", ""), ("3", "")):  # compiled, written, read
        env = {"PYTHONHASHSEED": seed, "PATH": "", "PYTHONPATH": str(tmp_path),
               **({"PYTHONDONTWRITEBYTECODE": "1"} if no_bytecode else {})}
        output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                check=True, env=env, cwd=tmp_path).stdout
        runs.append(json.loads(output))
    assert list((tmp_path / "__pycache__").glob("shapes.*.pyc"))
    assert runs[0] == runs[1] == runs[2] and "shapes.kind" in runs[0]
    (tmp_path / "shapes.py").write_text(
        (tmp_path / "shapes.py").read_text().replace('"triangle"', '"hexagon"'))
    changed_run = json.loads(subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""}, cwd=tmp_path).stdout)
    assert changed_run["shapes.kind"] != runs[0]["shapes.kind"]
    assert changed_run["shapes.Shape"] == runs[0]["shapes.Shape"]


def test_a_class_is_described_anew_once_a_method_is_replaced_or_given_other_code() -> None:
    from pytest_aide.guards.fingerprint import _describe

    class Box:
        def size(self) -> int:
            return 1

    first = _describe(Box)
    assert _describe(Box) == first  # described from the cache
    Box.size.__code__ = (lambda self: 2).__code__
    recoded = _describe(Box)
    Box.size = lambda self: 3  # type: ignore[method-assign]
    replaced = _describe(Box)
    Box.extra = staticmethod(len)  # type: ignore[attr-defined]
    extended = _describe(Box)
    assert len({first, recoded, replaced, extended}) == 4


def test_a_class_is_described_anew_once_a_wrapped_function_is_given_other_code() -> None:
    """A static method or a property stays the same object while its function's code changes."""
    from pytest_aide.guards.fingerprint import _describe

    class Box:
        @staticmethod
        def unit() -> int:
            return 1

        @property
        def size(self) -> int:
            return 1

    first = _describe(Box)
    assert _describe(Box) == first
    vars(Box)["unit"].__func__.__code__ = (lambda: 2).__code__
    static_recoded = _describe(Box)
    vars(Box)["size"].fget.__code__ = (lambda self: 2).__code__
    property_recoded = _describe(Box)
    assert len({first, static_recoded, property_recoded}) == 3


def test_new_code_given_to_a_reference_function_during_a_test_is_tampering(
    project: pytest.Pytester,
) -> None:
    """The same function object, other code: object identities do not change, digests do."""
    evaluator = evaluator_of(project)
    base = evaluator.evaluate(None, project.path / ".aide" / "base", baseline=None)
    recode = textwrap.dedent("""
        def mean(values):
            import reference
            reference.expected_mean.__code__ = (lambda values: 0.0).__code__
            return 0.0
    """)
    evaluation = evaluator.evaluate(recode, project.path / ".aide" / "recode",
        baseline=baseline_of(base))
    found = [t for t in evaluation.findings_text if "changed during the tests" in t]
    assert found and "reference.expected_mean" in found[0], evaluation.tampered


def test_what_differs_by_host_is_not_a_change(tmp_path: Path) -> None:
    """Two nodes of a Ray cluster: other per-node variables, the project's copy at another
    path. The digests agree; a change the code itself makes to the environment shows."""
    script = ("import json, os, shapes; from pytest_aide.guards.fingerprint import digests; "
              "{}print(json.dumps(digests(['shapes'], [], 'x')))")
    runs = []
    for node, change in (("a", ""), ("b", ""), ("b", "os.environ['X'] = '1'; ")):
        copy = tmp_path / node
        copy.mkdir(exist_ok=True)
        (copy / "shapes.py").write_text("def area(w, h):\n    return w * h\n")
        env = {"PATH": "", "PYTHONPATH": str(copy), "RAY_RAYLET_PID": str(ord(node)),
               "HOSTNAME": f"node-{node}"}
        runs.append(json.loads(subprocess.run(
            [sys.executable, "-c", script.format(change)], capture_output=True, text=True,
            check=True, env=env, cwd=copy).stdout))
    assert runs[0] == runs[1] and "shapes.area" in runs[0]
    assert changed_since_baseline(runs[0], runs[2]) == ["interpreter: environment"]
