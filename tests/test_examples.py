"""The examples in ``examples/`` pass as shipped, and the offline search runs on each.

Each example is copied into a fresh directory and run in a subprocess, the way a newcomer
runs it (``pytest examples/<name>``): the real plugin, the real torch / Triton / scikit-learn.
The copy keeps the repository clean: a search may rewrite the target file and writes a run
directory.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: example directory -> (tests it ships, the marked test whose metric the summary shows)
SHIPPED = {
    "hello-kernel-world": (13, "test_hello_kernel.py::test_speed", "mean"),
    "triton-softmax": (13, "test_triton_softmax.py::test_speed", "mean"),
    "model-development": (6, "test_digits_model.py::test_validation_accuracy", "accuracy"),
    "python-hot-loop": (20, "test_spelling.py::test_speed", "mean"),
    "prompt-engineering": (8, "test_sentiment_prompt.py::test_accuracy", "accuracy"),
}


#: what each example imports; tox environments without the heavy extras skip those examples
REQUIRES = {
    "hello-kernel-world": ["torch"],
    "triton-softmax": ["torch", "triton"],
    "model-development": ["sklearn"],
    "python-hot-loop": [],
    "prompt-engineering": ["openai", "pytest_httpserver"],
}


def example_params() -> list:
    params = []
    for name in sorted(SHIPPED):
        missing = [m for m in REQUIRES[name] if importlib.util.find_spec(m) is None]
        marks = [pytest.mark.skip(reason=f"needs {', '.join(missing)}")] if missing else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def copy_example(pytester: pytest.Pytester, name: str) -> Path:
    destination = pytester.path / name
    shutil.copytree(EXAMPLES / name, destination, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def test_every_example_is_covered() -> None:
    # ci/ is the pre-merge recipe, not an example to optimize (tests/test_ci_recipe.py)
    shipped = {path.name for path in EXAMPLES.iterdir() if path.is_dir()} - {"ci"}
    assert shipped == set(SHIPPED) == set(REQUIRES)
    for name in shipped:
        assert (EXAMPLES / name / "README.md").is_file(), name


@pytest.mark.parametrize("name", example_params())
def test_example_passes_as_shipped(pytester: pytest.Pytester, name: str) -> None:
    passed, marked, metric = SHIPPED[name]
    copy_example(pytester, name)
    result = pytester.runpytest_subprocess(name, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=passed)
    # The plain run reports the marked test's metric in the aide summary.
    result.stdout.fnmatch_lines([f"*{marked}*{metric}=*"])


@pytest.mark.parametrize("name", example_params())
def test_offline_search_runs(pytester: pytest.Pytester, name: str) -> None:
    example = copy_example(pytester, name)
    marked = SHIPPED[name][1].split("::")[-1]
    log_dir = pytester.path / "runs"
    # Only the marked test (it checks its own result) and seven confirmation rounds (the
    # fewest that can confirm): the search is what is under test, and every evaluation is a
    # child pytest that imports torch or scikit-learn again.
    result = pytester.runpytest_subprocess(
        name,
        "-p",
        "no:cacheprovider",
        "-k",
        marked,
        "--aide-steps",
        "3",
        "--aide-model",
        "tune",
        "--aide-confirm-rounds",
        "7",
        "--aide-log-dir",
        str(log_dir),
    )
    assert result.ret == 0, result.stdout.str()
    journals = list(log_dir.glob("*/journal.json"))
    assert len(journals) == 1, journals
    journal = json.loads(journals[0].read_text(encoding="utf-8"))
    assert journal["finished"]
    nodes = journal["nodes"]
    assert len(nodes) == 4  # the baseline and three proposals
    assert nodes[0]["operator"] == "baseline"
    assert nodes[0]["status"] == "good", nodes[0]["error"]
    # Every value in a knob's hinted range is valid, so the tuner's candidates pass.
    assert all(node["status"] == "good" for node in nodes), [n["error"] for n in nodes]
    if name == "model-development":
        # Accuracy is deterministic: the seeded tuner beats the mediocre start, and the
        # better hyperparameters are written to the (copied) target.
        assert journal["best_id"] not in (None, 0)
        assert "GAMMA = 0.01  #" not in (example / "digits_model.py").read_text()
