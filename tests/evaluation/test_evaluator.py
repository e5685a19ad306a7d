"""The evaluator: a candidate judged in a child pytest, in isolation from the user's files."""

from __future__ import annotations

import hashlib
import importlib.util
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.study import Objective, Study, Target


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flat_study(pytester: pytest.Pytester) -> Study:
    path = pytester.path / "slow.py"
    return Study(
        target=Target("slow", path),
        objectives=[Objective("test_slow.py::test_speed", "mean", False)],
        guard_nodeids=[f"test_slow.py::test_correct[{n}]" for n in (0, 1, 7, 64, 100)],
        test_files=[pytester.path / "test_slow.py"],
    )


def test_flat_module_candidate_is_measured_and_user_file_untouched(slow_project) -> None:
    study = flat_study(slow_project)
    before = digest(study.target.path)
    candidate = study.target.path.read_text().replace("CHUNK = 2", "CHUNK = 16")
    evaluation = Evaluator(study, slow_project.path).evaluate(
        candidate, slow_project.path / ".aide" / "n1", baseline=None)
    assert evaluation.completed, evaluation.output_tail
    assert evaluation.not_passed(study.nodeids) == []
    fast = evaluation.metric(study.objectives[0])
    baseline = Evaluator(study, slow_project.path).evaluate(
        None, slow_project.path / ".aide" / "n0", baseline=None)
    slow = baseline.metric(study.objectives[0])
    assert fast is not None and slow is not None
    assert fast < slow / 2  # 8x fewer sleeps: the candidate, not the file, was measured
    samples = evaluation.tests["test_slow.py::test_speed"].measurement.samples
    assert len(samples) == 12
    assert digest(study.target.path) == before
    # the machine's speed, probed just before and after the tests, for like-with-like checks
    assert len(evaluation.speed) == 2 and all(0 < s < 1 for s in evaluation.speed)


def test_candidate_that_fails_a_guard(slow_project) -> None:
    study = flat_study(slow_project)
    wrong = study.target.path.read_text().replace("total += sum", "total -= sum")
    evaluation = Evaluator(study, slow_project.path).evaluate(wrong, slow_project.path / "w",
        baseline=None)
    assert evaluation.completed
    failed = evaluation.not_passed(study.nodeids)
    assert "test_slow.py::test_correct[7]" in failed
    assert "test_slow.py::test_correct[0]" not in failed
    assert evaluation.outcome("test_slow.py::test_correct[7]") == "failed"
    assert "assert" in evaluation.tests["test_slow.py::test_correct[7]"].longrepr
    assert "test_correct[7]: failed" in evaluation.error_summary(study.nodeids)


def test_timeout_kills_the_whole_process_group(slow_project) -> None:
    study = flat_study(slow_project)
    hang = textwrap.dedent(
        """
        import os, subprocess, sys, time
        CHUNK = 2
        CHILD = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        WORKDIR = os.path.dirname(os.path.dirname(__file__))
        with open(os.path.join(WORKDIR, "grandchild.pid"), "w") as f:
            f.write(str(CHILD.pid))
        def work(n):
            time.sleep(60)
        """
    )
    evaluator = Evaluator(study, slow_project.path, timeout=4)
    evaluation = evaluator.evaluate(hang, slow_project.path / "h", baseline=None)
    assert evaluation.status == "timeout"
    assert evaluation.duration < 20
    assert "timed out" in evaluation.error_summary(study.nodeids)
    pid = int((slow_project.path / "h" / "grandchild.pid").read_text())
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


@pytest.mark.parametrize(
    "crash",
    ["import os\nos._exit(0)\n", "import faulthandler\nfaulthandler._sigsegv()\n"],
    ids=["os._exit", "segfault"],
)
def test_child_that_dies_without_results_is_an_error(slow_project, crash: str) -> None:
    study = flat_study(slow_project)
    evaluation = Evaluator(study, slow_project.path).evaluate(crash, slow_project.path / "c",
        baseline=None)
    assert evaluation.status == "crashed"
    assert evaluation.not_passed(study.nodeids) == study.nodeids
    assert "died without results" in evaluation.error_summary(study.nodeids)


def test_src_layout_package_with_relative_imports(pytester: pytest.Pytester) -> None:
    pkg = pytester.path / "src" / "fastpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .core import total\n")
    (pkg / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (pkg / "core.py").write_text(
        "import inspect\nfrom .helpers import double\n\n"
        "def total(xs):\n    return sum(double(x) for x in xs)\n\n"
        "def source():\n    return inspect.getsource(total)\n"
    )
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_core.py").write_text(
        "from fastpkg.core import total, source\n\n"
        "def test_total(record_property):\n"
        "    assert total([1, 2]) == 6\n"
        "    record_property('src', source())\n"
    )
    pytester.makeini("[pytest]\npythonpath = src\n")
    core = pkg / "core.py"
    before = digest(core)
    study = Study(
        target=Target("fastpkg.core", core),
        objectives=[Objective("tests/test_core.py::test_total", "src", True)],
        guard_nodeids=["tests/test_core.py::test_total"],
    )
    candidate = core.read_text().replace(
        "return sum(double(x) for x in xs)", "return 2 * sum(xs)  # candidate"
    )
    evaluation = Evaluator(study, pytester.path).evaluate(candidate, pytester.path / "run" / "1",
        baseline=None)
    assert evaluation.completed, evaluation.output_tail
    assert evaluation.outcome("tests/test_core.py::test_total") == "passed"
    recorded = evaluation.tests["tests/test_core.py::test_total"].measurement.properties
    assert "# candidate" in recorded["src"]  # inspect.getsource sees the candidate
    assert digest(core) == before


def test_parallel_evaluations_do_not_share_files(slow_project) -> None:
    study = flat_study(slow_project)
    source = study.target.path.read_text()
    candidates = {chunk: source.replace("CHUNK = 2", f"CHUNK = {chunk}") for chunk in (4, 16)}
    evaluator = Evaluator(study, slow_project.path)
    with ThreadPoolExecutor(2) as pool:
        futures = {
            chunk: pool.submit(evaluator.evaluate, code, slow_project.path / f"p{chunk}",
                               baseline=None)
            for chunk, code in candidates.items()
        }
        results = {chunk: f.result() for chunk, f in futures.items()}
    assert all(r.completed and not r.not_passed(study.nodeids) for r in results.values())
    objective = study.objectives[0]
    assert results[16].metric(objective) < results[4].metric(objective)


def test_child_environment_has_no_provider_keys(slow_project, monkeypatch, tmp_path) -> None:
    import json

    secrets = {"OPENAI_API_KEY": "sk-secret-123", "MY_SERVICE_TOKEN": "tok-456"}
    for name in ("SECRET_KEY", "API_KEY", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD",
                 "GITHUB_TOKEN", "DJANGO_SECRET"):
        secrets[name] = f"secret-of-{name}"
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEEP_ME", "visible-harmless-value")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")  # named to keep: it stays
    monkeypatch.setenv("KEEP_OUT", "a harmless name, named to drop")
    study = flat_study(slow_project)
    seen = tmp_path / "environment.json"  # outside the project: the child's whole environment
    leak = study.target.path.read_text() + textwrap.dedent(
        f"""
        import json, os
        with open({str(seen)!r}, "w") as handle:
            json.dump(dict(os.environ), handle)
        """
    )
    evaluator = Evaluator(study, slow_project.path, env_keep=["TOKENIZERS_PARALLELISM"],
                          env_drop=["KEEP_OUT"])
    evaluation = evaluator.evaluate(
        leak, slow_project.path / "e", nodeids=["test_slow.py::test_correct[1]"], baseline=None
    )
    assert evaluation.completed, evaluation.output_tail
    environment = json.loads(seen.read_text())
    text = json.dumps(environment)
    for name, value in secrets.items():
        assert value not in text, f"{name}'s value reached the candidate"
    # the harmless ones do reach it, so the file holds the child's real environment
    assert environment.get("KEEP_ME") == "visible-harmless-value"
    assert environment.get("TOKENIZERS_PARALLELISM") == "false"
    assert "KEEP_OUT" not in environment


@pytest.mark.skipif(
    importlib.util.find_spec("triton") is None or importlib.util.find_spec("torch") is None,
    reason="needs triton and torch",
)
def test_triton_kernel_candidate_under_the_interpreter(pytester: pytest.Pytester) -> None:
    kernel = textwrap.dedent(
        """
        import torch
        import triton
        import triton.language as tl

        BLOCK = 64

        @triton.jit
        def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK_SIZE: tl.constexpr):
            offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
            mask = offsets < n
            x = tl.load(x_ptr + offsets, mask=mask)
            y = tl.load(y_ptr + offsets, mask=mask)
            tl.store(out_ptr + offsets, x + y, mask=mask)

        def add(x, y):
            out = torch.empty_like(x)
            add_kernel[(triton.cdiv(x.numel(), BLOCK),)](x, y, out, x.numel(), BLOCK_SIZE=BLOCK)
            return out
        """
    )
    pytester.makepyfile(tkernel=kernel)
    pytester.makepyfile(
        test_tkernel="""
        import os
        import torch
        import tkernel

        def test_add(record_property):
            x, y = torch.rand(300), torch.rand(300)
            torch.testing.assert_close(tkernel.add(x, y), x + y)
            record_property("block", tkernel.BLOCK)
        """
    )
    pytester.makeini("[pytest]\npythonpath = .\n")
    pytester._monkeypatch.setenv("TRITON_INTERPRET", "1")
    study = Study(
        target=Target("tkernel", pytester.path / "tkernel.py"),
        objectives=[Objective("test_tkernel.py::test_add", "block", True)],
        guard_nodeids=["test_tkernel.py::test_add"],
    )
    candidate = kernel.replace("BLOCK = 64", "BLOCK = 128").replace("x + y, mask", "y + x, mask")
    evaluation = Evaluator(study, pytester.path).evaluate(candidate, pytester.path / "t",
        baseline=None)
    assert evaluation.completed, evaluation.output_tail
    assert evaluation.outcome("test_tkernel.py::test_add") == "passed", evaluation.output_tail
    assert evaluation.metric(study.objectives[0]) == 128
    broken = kernel.replace("x + y, mask", "x - y, mask")
    bad = Evaluator(study, pytester.path).evaluate(broken, pytester.path / "t2", baseline=None)
    assert bad.outcome("test_tkernel.py::test_add") == "failed"
