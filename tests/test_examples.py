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
from llm_fake import FakeProvider, code_reply, use_fake_openai

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


#: The examples whose offline search test_offline_search_runs runs with the tuner alone
#: (triton-softmax's runs with a scripted LLM and the tuner below: one run of each, as each
#: evaluation pays for torch, Triton and the interpreter).
TUNER_ALONE = [p for p in example_params() if p.values[0] != "triton-softmax"]


@pytest.mark.parametrize("name", TUNER_ALONE)
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


def test_an_llm_kernels_knob_is_tuned_under_the_triton_interpreter(
    pytester: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--aide-model openai:M+tune``: a scripted model rewrites the Triton kernel and marks
    its block size at a value that is not the best; the tuner's children of that node find
    a better one under the interpreter (bigger blocks: fewer loop steps per row), and the
    journal and tree.html show them under it."""
    for module in ("torch", "triton", "openai"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    example = copy_example(pytester, "triton-softmax")
    original = (example / "triton_softmax.py").read_text(encoding="utf-8")
    drafted = original.replace("BLOCK_SIZE = 16  # aide: 16..4096 pow2",
                               "BLOCK_SIZE = 32  # aide: 32..1024 pow2")
    assert drafted != original
    use_fake_openai(monkeypatch)
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(drafted, "Load twice as many columns per step.")))
    log_dir = pytester.path / "runs"
    result = pytester.runpytest_subprocess(
        "triton-softmax", "-p", "no:cacheprovider", "-k", "test_speed",
        "--aide-steps", "3", "--aide-drafts", "1", "--aide-debug-prob", "0",
        "--aide-model", "openai:some-model+tune", "--aide-base-url", fake.base_url,
        "--aide-tune-children", "2", "--aide-confirm-rounds", "7",
        "--aide-preserve-source", "--aide-log-dir", str(log_dir))
    assert result.ret == 0, result.stdout.str()
    assert len(fake.received) == 1  # one LLM call; the other two steps were the tuner's
    (path,) = log_dir.glob("*/journal.json")
    journal = json.loads(path.read_text(encoding="utf-8"))
    llm, *children = journal["nodes"][1:]
    assert llm["code"] == drafted and llm["status"] == "good", llm["error"]
    # under the LLM's node: its children, or a child of the tuner's child that beat it
    lineage = {llm["id"]} | {c["id"] for c in children}
    assert len(children) == 2 and all(c["parent"] in lineage for c in children)
    assert children[0]["parent"] == llm["id"]
    assert all(c["plan"].startswith(f"tune node {llm['id']}'s knobs: ") for c in children)
    blocks = [int(c["code"].split("BLOCK_SIZE = ")[1].split()[0]) for c in children]
    assert any(block > 32 for block in blocks), blocks  # the seeded tuner tries bigger ones
    best = next(n for n in journal["nodes"] if n["id"] == journal["best_id"])
    assert best in children, [(n["id"], n["plan"], n["metrics"]) for n in journal["nodes"]]
    assert int(best["code"].split("BLOCK_SIZE = ")[1].split()[0]) > 32
    tree = (path.parent / "tree.html").read_text(encoding="utf-8")
    data = json.loads(tree.split('id="aide-data">', 1)[1].split("</script>", 1)[0])
    shown = {n["id"]: n["parent"] for n in data["journal"]["nodes"]}
    assert all(shown[c["id"]] == c["parent"] for c in children)
