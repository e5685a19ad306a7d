"""The marker's registration, its validation at collection, and the plain-run report."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest


def test_plugin_is_registered_through_the_entry_point(pytester: pytest.Pytester) -> None:
    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("aide") == "pytest_aide.plugin"
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.optimize(metric, maximize=None, target=None, "
                                "inputs=None, compare=None, rtol=None, atol=None)*"])
    help_text = pytester.runpytest_subprocess("--help")
    help_text.stdout.fnmatch_lines(["*--aide-steps*", "*--aide-model*", "*--aide-resume*"])


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("@pytest.mark.optimize()", "*test_k.py::test_it: @pytest.mark.optimize needs a metric*"),
        (
            '@pytest.mark.optimize(metric="accuracy")',
            "*test_k.py::test_it: metric 'accuracy' is not a pytest-benchmark statistic*"
            "add maximize=True*",
        ),
        (
            '@pytest.mark.optimize(metric="mean", target="nosuch.module")',
            "*test_k.py::test_it: target module 'nosuch.module' cannot be imported*",
        ),
        (
            '@pytest.mark.optimize(metric="mean", target="lib/missing.py")',
            "*test_k.py::test_it: target file 'lib/missing.py' does not exist*",
        ),
        (
            '@pytest.mark.optimize(metric="mean", target="kern:nope")',
            "*test_k.py::test_it: target kern:nope names no function or class that kern.py "
            "defines*(its top-level functions and classes: f)*target='kern:f'*"
            "target='kern' to optimize the whole module*",
        ),
        (
            '@pytest.mark.optimize(metric="mean", target="kern.py:f.inner")',
            "*test_k.py::test_it: target kern:f.inner names no function or class*",
        ),
        (
            '@pytest.mark.optimize(metric="mean", maximize="yes")',
            "*maximize must be True or False*",
        ),
        (
            '@pytest.mark.optimize(metric="mean", bogus=1)',
            "*unexpected arguments: bogus*",
        ),
    ],
)
def test_bad_markers_are_usage_errors_before_any_test_runs(
    pytester: pytest.Pytester, marker: str, expected: str
) -> None:
    pytester.makepyfile(kern="def f():\n    return 1\n")
    pytester.makepyfile(
        test_k=f"""
        import pytest
        from kern import f

        def test_other():
            open("ran.txt", "w").write("ran")

        {marker}
        def test_it():
            assert f() == 1
        """
    )
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert not (pytester.path / "ran.txt").exists()


def test_ambiguous_target_lists_the_candidates(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(alpha="def a():\n    return 1\n", beta="def b():\n    return 2\n")
    pytester.makepyfile(
        test_ab="""
        import pytest
        import alpha
        from beta import b

        @pytest.mark.optimize(metric="mean")
        def test_it(benchmark):
            benchmark(alpha.a)
        """
    )
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*test_ab.py::test_it: cannot infer what to optimize*(alpha, beta)*target='alpha'*"]
    )


def test_no_project_import_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_none="""
        import math
        import pytest

        @pytest.mark.optimize(metric="mean")
        def test_it(benchmark):
            benchmark(math.sqrt, 2.0)
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_none.py::test_it: cannot infer*imports no module*"])


@pytest.mark.parametrize(
    "target",
    ['"alpha"', '"alpha.py"', "alpha", "alpha.a", '"alpha:a"', '"alpha.py:a"', "alpha.K.m",
     '"alpha:K.m"', "alpha.K"],
    ids=["dotted", "path", "module", "function", "dotted-function", "path-function",
         "method", "dotted-method", "class"],
)
def test_explicit_target_forms(pytester: pytest.Pytester, target: str) -> None:
    pytester.makepyfile(alpha="def a():\n    return 1\n\n\nclass K:\n    def m(self):\n"
                              "        return 2\n",
                        beta="def b():\n    return 2\n")
    pytester.makepyfile(
        test_ab=f"""
        import pytest
        import alpha
        import beta

        @pytest.mark.optimize(metric="mean", target={target})
        def test_it(benchmark):
            benchmark(alpha.a)
        """
    )
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*aide metrics*", "test_ab.py::test_it  mean=*"])


def test_plain_run_reports_each_metric_source(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model="def fit():\n    return 0.5\n")
    pytester.makepyfile(
        test_m="""
        import pytest
        from model import fit

        @pytest.mark.optimize(metric="median")
        def test_bench(benchmark):
            benchmark(fit)

        @pytest.mark.optimize(metric="accuracy", maximize=True)
        def test_property(record_property):
            record_property("accuracy", 0.875)

        @pytest.mark.optimize(metric="loss", maximize=False)
        def test_extra_info(benchmark):
            benchmark.extra_info["loss"] = 0.25
            benchmark(fit)

        @pytest.mark.optimize(metric="score", maximize=True)
        def test_output():
            print("progress: 50%")
            print("score: 0.125")

        @pytest.mark.optimize(metric="f1", maximize=True)
        def test_missing(record_property):
            record_property("precision", 0.5)
        """
    )
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=5, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*= aide metrics =*",
            "test_m.py::test_bench       median=*",
            "test_m.py::test_property    accuracy=0.875",
            "test_m.py::test_extra_info  loss=0.25",
            "test_m.py::test_output      score=0.125",
            "test_m.py::test_missing     f1=missing",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*AideMetricWarning: test_m.py::test_missing is marked optimize(metric='f1') but did "
         "not produce it; it recorded record_property(precision)*"]
    )


def test_record_property_wins_over_output(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(model="X = 1\n")
    pytester.makepyfile(
        test_o="""
        import pytest
        import model

        @pytest.mark.optimize(metric="acc", maximize=True)
        def test_it(record_property):
            print("acc = 0.1")
            record_property("acc", 0.9)
        """
    )
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["test_o.py::test_it  acc=0.9"])


@pytest.mark.parametrize(("metrics", "compares", "replays"), [
    (["mean"], [None], True),  # a speed: a faster candidate must do the same work
    (["accuracy"], [None], False),  # a score: a better one answers differently
    (["accuracy", "mean"], [None, None], True),
    (["accuracy"], [True], True),  # asked for
    (["mean", "mean"], [None, False], False),  # one marker's False wins
    (["mean", "accuracy"], [True, False], False),
])
def test_the_replay_is_on_for_speeds_and_off_for_scores_unless_a_marker_says(
    metrics: list[str], compares: list[bool | None], replays: bool
) -> None:
    from pytest_aide.study import Objective, Study, Target, _combined_compare

    study = Study(Target("mod", Path("mod.py")))
    for n, (metric, compare) in enumerate(zip(metrics, compares, strict=True)):
        study.objectives.append(Objective(f"t.py::test_{n}", metric, metric != "mean"))
        study.compare = _combined_compare(study.compare, compare)
    assert study.replays_answers is replays
