"""Several targets at once (``target=[...]``): a candidate is every target file, evaluated
together (in bubblewrap, cold and forked from a warm zygote), written all or none, and offered
as one ``best.patch`` that ``git apply`` takes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from attacks import baseline_of

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.evaluation.sandbox import choose
from pytest_aide.journal import Journal
from pytest_aide.report.artifacts import sources_patch
from pytest_aide.sources import Sources, SourcesError
from pytest_aide.study import MarkerError, Objective, Study, Target, resolve_targets
from pytest_aide.workspace import apply_sources, find_run, put_back_sources

#: The kernel does one item per call, each with a fixed cost; the fast path is a batch call
#: that pays the cost once, which the caller must use: neither file alone is faster.
KERNEL = """\
import time

COST = 0.004


def step(x):
    time.sleep(COST)
    return x * 2
"""

CALLER = """\
import kernel


def total(values):
    return sum(kernel.step(v) for v in values)
"""

FAST_KERNEL = KERNEL + """

def steps(values):
    time.sleep(COST)
    return [x * 2 for x in values]
"""

FAST_CALLER = """\
import kernel


def total(values):
    return sum(kernel.steps(values))
"""

TESTS = """\
import pytest
from caller import total


def test_total():
    assert total([1, 2, 3]) == 12
    assert total([]) == 0


@pytest.mark.optimize(metric="mean", target=["caller", "kernel"])
def test_speed(benchmark):
    values = list(range(8))
    assert benchmark.pedantic(total, args=(values,), rounds=5, iterations=1) == 56
"""

RELPATHS = ["caller.py", "kernel.py"]


def candidate(caller: str = CALLER, kernel: str = KERNEL) -> str:
    return Sources.of([("caller.py", caller), ("kernel.py", kernel)]).encode()


def write_project(pytester: pytest.Pytester) -> None:
    """``kernel.py``, ``caller.py`` (byte for byte) and the tests."""
    (pytester.path / "kernel.py").write_text(KERNEL)
    (pytester.path / "caller.py").write_text(CALLER)
    pytester.makepyfile(test_pipeline=TESTS)
    pytester.makeini("[pytest]\npythonpath = .\n")


def two_file_project(pytester: pytest.Pytester) -> Study:
    write_project(pytester)
    return Study(
        target=Target("caller", pytester.path / "caller.py"),
        also=(Target("kernel", pytester.path / "kernel.py"),),
        objectives=[Objective("test_pipeline.py::test_speed", "mean", False)],
        guard_nodeids=["test_pipeline.py::test_total"],
        test_files=[pytester.path / "test_pipeline.py"],
    )


# -- the value --------------------------------------------------------------------------


def test_one_file_is_stored_as_its_text_and_several_as_their_json() -> None:
    one = Sources.of([("mod.py", "X = 1\n")])
    assert one.encode() == "X = 1\n"
    assert Sources.decode("X = 1\n", ["mod.py"]) == one
    two = Sources.decode(candidate(), RELPATHS)
    assert two.relpaths == RELPATHS and two.primary == CALLER and two.text("kernel.py") == KERNEL
    assert two.changed(two.replace("kernel.py", FAST_KERNEL)) == ["kernel.py"]
    with pytest.raises(SourcesError, match="not the run's targets"):
        Sources.decode(candidate(), ["caller.py", "other.py"])
    with pytest.raises(SourcesError, match="not their JSON"):
        Sources.decode(CALLER, RELPATHS)


def test_a_one_target_journal_says_nothing_of_targets_and_old_ones_load() -> None:
    journal = Journal(run_id="r", target="mod.py", module="mod", objectives=[],
                      original_sha256="x")
    assert "targets" not in journal.to_dict() and journal.relpaths == ["mod.py"]
    several = Journal.from_dict({**journal.to_dict(), "targets": RELPATHS})
    assert several.to_dict()["targets"] == RELPATHS and several.relpaths == RELPATHS
    old = Journal.load(Path(__file__).parent / "data" / "v1_run" / "journal.json")
    assert old.relpaths == [old.target]


# -- the marker -------------------------------------------------------------------------


def test_a_list_names_each_target_and_bad_members_are_explained(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makepyfile(kernel=KERNEL, caller=CALLER)
    monkeypatch.syspath_prepend(str(pytester.path))
    item = SimpleNamespace(nodeid="test_x.py::test_speed")
    targets = resolve_targets(["caller:total", "kernel"], item, pytester.path)
    assert [t.name for t in targets] == ["caller:total", "kernel"]
    with pytest.raises(MarkerError, match=r"test_x.py::test_speed: target=\[\] names no"):
        resolve_targets([], item, pytester.path)
    with pytest.raises(MarkerError, match=r"names kernel\.py twice \('kernel:step' and 'kernel'\)"):
        resolve_targets(["kernel:step", "kernel"], item, pytester.path)
    with pytest.raises(MarkerError, match=r"test_x\.py::test_speed: .*'nowhere'"):
        resolve_targets(["caller", "nowhere"], item, pytester.path)


# -- evaluated together -----------------------------------------------------------------


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_both_files_are_evaluated_together_in_the_sandbox(
    pytester: pytest.Pytester, warm: bool,
) -> None:
    """Each file of a candidate is mounted at its own path: the change to both is faster and
    passes; the caller alone fails (the kernel has no batch call); the kernel alone passes
    and is not faster; none is taken for tampering with the other target's state."""
    study = two_file_project(pytester)
    evaluator = Evaluator(study, pytester.path, sandbox=choose("bwrap").sandbox,
                          protected_exclude=[pytester.path / ".aide"], warm=warm)
    root = pytester.path / ".aide" / "nodes"
    objective = study.objectives[0]
    try:
        original = evaluator.evaluate(None, root / "0", baseline=None)
        baseline = baseline_of(original)
        both, caller_only, kernel_only = (
            evaluator.evaluate(code, root / str(i), baseline=baseline)
            for i, code in enumerate((candidate(FAST_CALLER, FAST_KERNEL),
                                      candidate(caller=FAST_CALLER),
                                      candidate(kernel=FAST_KERNEL)), start=1))
        assert evaluator.warm_notice == ""
    finally:
        evaluator.close()
    assert [e.tampered for e in (original, both, caller_only, kernel_only)] == [[], [], [], []]
    assert original.not_passed(study.nodeids) == both.not_passed(study.nodeids) == []
    assert both.metric(objective) < original.metric(objective) / 3
    assert set(caller_only.not_passed(study.nodeids)) == set(study.nodeids)
    assert kernel_only.not_passed(study.nodeids) == []
    assert kernel_only.metric(objective) > original.metric(objective) / 2
    # the project's files were never touched: candidates are mounted, not written
    assert (pytester.path / "kernel.py").read_text() == KERNEL
    assert (pytester.path / "caller.py").read_text() == CALLER


def test_without_a_sandbox_each_target_module_is_served_from_its_candidate(
    pytester: pytest.Pytester,
) -> None:
    study = two_file_project(pytester)
    evaluator = Evaluator(study, pytester.path, protected_exclude=[pytester.path / ".aide"])
    root = pytester.path / ".aide" / "nodes"
    fast = evaluator.evaluate(candidate(FAST_CALLER, FAST_KERNEL), root / "1", baseline=None)
    broken = evaluator.evaluate(candidate(caller=FAST_CALLER), root / "2", baseline=None)
    assert fast.completed and fast.not_passed(study.nodeids) == []
    assert set(broken.not_passed(study.nodeids)) == set(study.nodeids)


# -- written all or none ----------------------------------------------------------------


def files_of(tmp_path: Path) -> list[tuple[str, Path]]:
    for name, text in (("caller.py", CALLER), ("kernel.py", KERNEL)):
        (tmp_path / name).write_text(text)
    return [(name, tmp_path / name) for name in RELPATHS]


def test_both_files_are_written_with_backups_and_put_back(tmp_path: Path) -> None:
    files, run_dir = files_of(tmp_path), tmp_path / "run"
    (tmp_path / "kernel.py").chmod(0o640)
    current = Sources.decode(candidate(), RELPATHS)
    result = apply_sources(files, current, Sources.decode(candidate(FAST_CALLER, FAST_KERNEL),
                                                          RELPATHS), run_dir)
    assert result.written, result.message
    assert (tmp_path / "caller.py").read_text() == FAST_CALLER
    assert (tmp_path / "kernel.py").read_text() == FAST_KERNEL
    assert (tmp_path / "kernel.py").stat().st_mode & 0o777 == 0o640
    assert (run_dir / "backup" / "kernel.py").read_text() == KERNEL
    assert put_back_sources(files, run_dir)
    assert [p.read_text() for _, p in files] == [CALLER, KERNEL]


def test_nothing_is_written_when_one_file_was_edited_during_the_run(tmp_path: Path) -> None:
    files = files_of(tmp_path)
    (tmp_path / "kernel.py").write_text(KERNEL + "# edited\n")
    result = apply_sources(files, Sources.decode(candidate(), RELPATHS),
                           Sources.decode(candidate(FAST_CALLER, FAST_KERNEL), RELPATHS),
                           tmp_path / "run")
    assert not result.written and "kernel.py was edited during the run" in result.message
    assert (tmp_path / "caller.py").read_text() == CALLER


INTERRUPTED_WRITE = """\
import os, signal, sys
from pathlib import Path
from pytest_aide import workspace
from pytest_aide.sources import Sources

root = Path(sys.argv[1])
renames = []
real_replace = os.replace


def replace(source, destination):
    renames.append(destination)
    if len(renames) == 2:  # Ctrl-C as the second file is renamed into place
        os.kill(os.getpid(), signal.SIGINT)
    real_replace(source, destination)


workspace.os.replace = replace
files = [(name, root / name) for name in ("caller.py", "kernel.py")]
current = workspace.read_sources(files)
best = Sources.of([(name, text + "# faster\\n") for name, text in current])
try:
    workspace.apply_sources(files, current, best, root / "run")
except KeyboardInterrupt:
    print("interrupted after", len(renames), "renames")
    sys.exit(130)
print("not interrupted")
"""


def test_ctrl_c_during_the_write_leaves_both_files_as_they_were(tmp_path: Path) -> None:
    """A real SIGINT, sent as the second file is renamed: the first, already renamed, is
    written back from its backup, and no temporary is left beside either."""
    files_of(tmp_path)
    (tmp_path / "write.py").write_text(INTERRUPTED_WRITE)
    done = subprocess.run([sys.executable, str(tmp_path / "write.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stdout + done.stderr
    assert "interrupted after 2 renames" in done.stdout
    assert (tmp_path / "caller.py").read_text() == CALLER
    assert (tmp_path / "kernel.py").read_text() == KERNEL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["caller.py", "kernel.py", "run",
                                                           "write.py"]


# -- the patch --------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def check_patch_applies(patch: Path, originals: dict[str, str], expected: dict[str, str],
                        where: Path) -> None:
    """``git apply --check`` and ``git apply`` of ``patch`` in a git repository of
    ``originals``, which then holds ``expected``."""
    where.mkdir()
    for relpath, text in originals.items():
        (where / relpath).parent.mkdir(parents=True, exist_ok=True)
        (where / relpath).write_text(text)
    assert git(where, "init", "-q").returncode == 0
    assert git(where, "add", ".").returncode == 0
    assert git(where, "commit", "-qm", "original").returncode == 0
    checked = git(where, "apply", "--check", str(patch))
    assert checked.returncode == 0, checked.stderr
    assert git(where, "apply", str(patch)).returncode == 0
    assert {r: (where / r).read_text() for r in expected} == expected


def test_one_patch_covers_every_file_and_git_applies_it(tmp_path: Path) -> None:
    before = Sources.of([("src/caller.py", CALLER), ("lib/kernel.py", KERNEL)])
    after = Sources.of([("src/caller.py", FAST_CALLER), ("lib/kernel.py", FAST_KERNEL)])
    patch = tmp_path / "best.patch"
    patch.write_text(sources_patch(before, after))
    assert patch.read_text().count("diff --git a/") == 2
    check_patch_applies(patch, dict(before), dict(after), tmp_path / "repo")


# -- a run, end to end ------------------------------------------------------------------

SCRIPTED = '''
from pytest_aide.proposers.base import Proposal
from pytest_aide.sources import Sources

PLANS = {CANDIDATES}


class Scripted:
    """The kernel's batch call alone, then the caller's alone, then both."""

    name = "scripted"

    def __init__(self, original_code, relpaths):
        self.original = Sources.decode(original_code, relpaths)
        self.plans = list(PLANS)

    def propose(self, request):
        plan, texts = self.plans.pop(0)
        sources = self.original
        for relpath, text in texts.items():
            sources = sources.replace(relpath, text)
        return Proposal(plan=plan, code=sources.encode())

    def observe(self, node, proposal):
        pass


def pytest_aide_make_proposer(config, settings, original_code, study, notify):
    return Scripted(original_code, study.relpaths(config.rootpath))
'''


def test_a_two_file_speedup_is_confirmed_written_atomically_and_patched(
    pytester: pytest.Pytester,
) -> None:
    """The acceptance run: in bubblewrap, only the candidate that changes both files is
    better; it is confirmed, both files are written (backups kept), the final check passes,
    and ``best.patch`` applies to the original files with ``git apply``."""
    write_project(pytester)
    plans = [("the kernel's batch call", {"kernel.py": FAST_KERNEL}),
             ("the caller uses the batch call", {"caller.py": FAST_CALLER}),
             ("both", {"kernel.py": FAST_KERNEL, "caller.py": FAST_CALLER})]
    pytester.makeconftest(SCRIPTED.replace("{CANDIDATES}", repr(plans)))
    result = pytester.runpytest_subprocess(
        "--aide-steps", "3", "--aide-debug-prob", "0", "--aide-drafts", "3",
        "-p", "no:randomly", "-p", "no:cacheprovider")
    output = result.stdout.str()
    assert result.ret == 0, output
    assert "aide: optimizing caller.py + kernel.py for" in output
    (run_dir,) = (p.parent for p in (pytester.path / ".aide").glob("*/journal.json"))
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["target"] == "caller.py" and journal["targets"] == RELPATHS
    statuses = [(n["plan"], n["status"]) for n in journal["nodes"][1:]]
    assert statuses == [(plan, status) for (plan, _), status in
                        zip(plans, ["good", "buggy", "good"], strict=True)], statuses
    assert journal["best_id"] == 3 and journal["nodes"][3]["confirmed"], journal["outcome"]
    assert (pytester.path / "caller.py").read_text() == FAST_CALLER
    assert (pytester.path / "kernel.py").read_text() == FAST_KERNEL
    assert (run_dir / "backup" / "caller.py").read_text() == CALLER
    assert (run_dir / "backup" / "kernel.py").read_text() == KERNEL
    assert (run_dir / "best" / "kernel.py").read_text() == FAST_KERNEL
    assert (run_dir / "original" / "caller.py").read_text() == CALLER
    check_patch_applies(run_dir / "best.patch", {"caller.py": CALLER, "kernel.py": KERNEL},
                        {"caller.py": FAST_CALLER, "kernel.py": FAST_KERNEL},
                        pytester.path / "repo")
    report = (run_dir / "report.md").read_text()
    assert "a/kernel.py" in report and "a/caller.py" in report
    assert "targets `caller.py`, `kernel.py`" in report
    tree = (run_dir / "tree.html").read_text()
    assert "# ---- kernel.py ----" in tree and "+++ b/kernel.py" in tree
    assert "target: caller.py + kernel.py written" in output
    assert find_run(pytester.path / ".aide", "caller.py", "latest", also=["kernel.py"]) == run_dir


def test_the_first_file_alone_is_not_a_run_of_both(tmp_path: Path) -> None:
    """Resume finds a run by every target, in order: a one-file run of the primary is not
    the run of the list, nor the other way round."""
    for run_id, extra in (("one", {}), ("two", {"targets": RELPATHS})):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "journal.json").write_text(json.dumps(
            {"target": "caller.py", **extra}))
    assert find_run(tmp_path, "caller.py", "latest").name == "one"
    assert find_run(tmp_path, "caller.py", "latest", also=["kernel.py"]).name == "two"



# -- a model's reply, per file ----------------------------------------------------------

BOTH_FILES_REPLY = f"""\
Batch the kernel's calls: one sleep for all the values.

### kernel.py
```python
{FAST_KERNEL}```

### caller.py
```python
def total(values):
    return sum(kernel.steps(values))
```
"""

CALLER_EDIT_ONLY = """\
Use the batch call (the kernel is left as it is).

### caller.py
<<<<<<< SEARCH
    return sum(kernel.step(v) for v in values)
=======
    return sum(kernel.steps(values))
>>>>>>> REPLACE
"""


def test_the_model_sees_every_file_and_answers_per_file(
    pytester: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the real openai SDK and a loopback server: the prompt shows the kernel in
    full and the caller's target function (item 1's skeleton prompt, as a member of the
    list); a reply with a section per file changes both; one that leaves the kernel out
    keeps it as it is (and fails: the caller alone calls a batch function it lacks)."""
    from llm_fake import FakeProvider, run_with, use_fake_openai

    write_project(pytester)
    (pytester.path / "test_pipeline.py").write_text(
        TESTS.replace('target=["caller", "kernel"]', 'target=["caller:total", "kernel"]'))
    use_fake_openai(monkeypatch)
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(CALLER_EDIT_ONLY), fake.text(BOTH_FILES_REPLY))
    result = run_with(pytester, fake, "--aide-steps", "2", "--aide-sandbox", "off",
                      "--aide-debug-prob", "0", "--aide-drafts", "2", "-p", "no:randomly")
    output = result.stdout.str()
    assert result.ret == 0, output
    assert len(fake.received) == 2, output
    prompt = str(fake.received[0].body["messages"][-1]["content"])
    assert "Optimize these files together: `total` in `caller.py`, `kernel.py`" in prompt
    assert "## caller.py: `total`, in full" in prompt and "## kernel.py" in prompt
    assert "def step(x):" in prompt and "### kernel.py" in prompt  # its code; the format
    (journal_path,) = (pytester.path / ".aide").glob("*/journal.json")
    nodes = json.loads(journal_path.read_text())["nodes"]
    first, second = (Sources.decode(n["code"], RELPATHS) for n in nodes[1:])
    assert first.text("kernel.py") == KERNEL and nodes[1]["status"] == "buggy"
    assert "kernel.steps" in first.text("caller.py")
    assert nodes[2]["status"] == "good", nodes[2]["error"]
    assert second.text("kernel.py") == FAST_KERNEL
    assert second.text("caller.py") == FAST_CALLER  # the definition spliced into the file
    assert (pytester.path / "caller.py").read_text() == FAST_CALLER
    assert (pytester.path / "kernel.py").read_text() == FAST_KERNEL


# -- the tuner --------------------------------------------------------------------------


def test_the_tuner_searches_the_knobs_of_every_file() -> None:
    from pytest_aide.journal import Node, Operator
    from pytest_aide.proposers.base import ProposalRequest
    from pytest_aide.proposers.tune.proposer import TuneProposer

    code = Sources.of([("a.py", "BLOCK = 4\n"), ("b.py", "BLOCK = 8\nWIDTH = 2\n")]).encode()
    tuner = TuneProposer(code, seed=3, relpaths=["a.py", "b.py"])
    assert [t.name for t in tuner.tunables] == ["a.py:BLOCK", "b.py:BLOCK", "b.py:WIDTH"]
    root = Node(id=0, parent=None, step=0, operator=Operator.BASELINE, plan="", code=code)
    request = ProposalRequest(operator="draft", parent=root, target_path="a.py", module="a",
                              original_code=code, test_sources={}, objectives=[])
    changed = set()
    for _ in range(3):  # each knob moved alone first
        proposal = tuner.propose(request)
        sources = Sources.decode(proposal.code, ["a.py", "b.py"])
        changed.update(Sources.decode(code, ["a.py", "b.py"]).changed(sources))
        values = tuner._values_in(proposal.code)
        assert sum(values[t.name] != t.value for t in tuner.tunables) == 1, values
    assert changed == {"a.py", "b.py"}


SCORED_KERNEL = "GAIN = 1  # aide: 1..8\n"
SCORED_CALLER = "import kernel\n\nOFFSET = 1  # aide: 1..8\n\n\ndef score():\n" \
                "    return kernel.GAIN * 10 + OFFSET\n"
SCORED_TESTS = """\
import pytest
from caller import score


@pytest.mark.optimize(metric="score", maximize=True, target=["caller", "kernel"])
def test_score(record_property):
    record_property("score", score())
"""


def test_a_tuner_run_over_two_files_writes_both_and_resumes(pytester: pytest.Pytester) -> None:
    """``--aide-model tune``: the knobs of both files are searched, the best is written to
    both, and ``--aide-resume latest`` finds the run by its list of targets."""
    (pytester.path / "kernel.py").write_text(SCORED_KERNEL)
    (pytester.path / "caller.py").write_text(SCORED_CALLER)
    pytester.makepyfile(test_scores=SCORED_TESTS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    flags = ("--aide-model", "tune", "--aide-sandbox", "off", "-p", "no:randomly")
    result = pytester.runpytest_subprocess("--aide-steps", "4", *flags)
    assert result.ret == 0, result.stdout.str()
    (journal_path,) = (pytester.path / ".aide").glob("*/journal.json")
    journal = json.loads(journal_path.read_text())
    moved = {path for node in journal["nodes"][1:]
             for path in Sources.decode(journal["nodes"][0]["code"], RELPATHS).changed(
                 Sources.decode(node["code"], RELPATHS))}
    assert moved == set(RELPATHS), journal["nodes"]
    best = Sources.decode(journal["nodes"][journal["best_id"]]["code"], RELPATHS)
    assert [(pytester.path / p).read_text() for p in RELPATHS] == [best.text(p) for p in RELPATHS]
    resumed = pytester.runpytest_subprocess("--aide-steps", "6", "--aide-resume", "latest",
                                            *flags)
    assert resumed.ret == 0, resumed.stdout.str()
    assert len(json.loads(journal_path.read_text())["nodes"]) == 7


def test_a_file_in_two_runs_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_project(pytester)
    pytester.makepyfile(test_kernel="""
        import pytest
        import kernel

        @pytest.mark.optimize(metric="mean", target="kernel")
        def test_step(benchmark):
            benchmark(kernel.step, 1)
        """)
    result = pytester.runpytest("--aide-steps", "1", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "kernel.py is a target of the markers of" in result.stderr.str() + \
        result.stdout.str()


def test_a_test_that_runs_only_the_other_file_guards_too(pytester: pytest.Pytester) -> None:
    """The guard probe's coverage measures every target file: a test that calls only the
    kernel is among the tests that execute the target (the guards of ``--aide-guards auto``),
    its functions named apart from the primary's."""
    study = two_file_project(pytester)
    pytester.makepyfile(test_kernel="import kernel\n\n\ndef test_step():\n"
                                    "    assert kernel.step(2) == 4\n")
    evaluator = Evaluator(study, pytester.path, sandbox=choose("bwrap").sandbox,
                          protected_exclude=[pytester.path / ".aide"])
    probe = evaluator.evaluate(None, pytester.path / ".aide" / "probe",
                               [*study.nodeids, "test_kernel.py::test_step"], baseline=None,
                               coverage=True)
    assert "test_kernel.py::test_step" in probe.executed_target, probe.executed_target
    assert probe.target_functions["test_kernel.py::test_step"] == ["kernel.py::step"]
    assert "total" in probe.target_functions["test_pipeline.py::test_total"]


def test_a_reply_per_file_is_read_by_its_headings() -> None:
    """A section under a heading naming a target file is that file's reply (a function
    target's definition spliced in, and refused outside it, naming the file); a reply that
    names no file is asked again (NoCodeError)."""
    from pytest_aide.proposers.base import TargetFile
    from pytest_aide.proposers.replies import EditMismatchError, NoCodeError, parse_files_reply

    parent = Sources.decode(candidate(), RELPATHS)
    files = [TargetFile("caller.py", "caller", "total"), TargetFile("kernel.py", "kernel")]
    parsed = parse_files_reply(BOTH_FILES_REPLY, parent, files)
    assert parsed.plan.startswith("Batch the kernel's calls") and parsed.form == "files"
    assert Sources.decode(parsed.code, RELPATHS) == Sources.decode(
        candidate(FAST_CALLER, FAST_KERNEL), RELPATHS)
    only_kernel = parse_files_reply(f"Batch.\n\n## `kernel.py`\n```python\n{FAST_KERNEL}```\n",
                                    parent, files)
    assert Sources.decode(only_kernel.code, RELPATHS).text("caller.py") == CALLER
    with pytest.raises(NoCodeError, match="names none of the files"):
        parse_files_reply(f"Batch.\n\n```python\n{FAST_KERNEL}```\n", parent, files)
    outside = "Edit.\n\n### caller.py\n<<<<<<< SEARCH\nimport kernel\n=======\nimport kernel" \
              " as k\n>>>>>>> REPLACE\n"
    with pytest.raises(EditMismatchError, match=r"^caller\.py: edit 1 of 1 did not match the "
                       r"definition of `total`"):
        parse_files_reply(outside, parent, files)


#: The batch call, right while the optimizer measures it (its worker is loaded) and wrong in
#: a plain run: every evaluation passes, only the final check can tell.
KERNEL_RIGHT_ONLY_WHEN_MEASURED = FAST_KERNEL.replace("def steps(values):", '''import sys

_MEASURED = any(name == "pytest" + "_aide.evaluation.worker" for name in sys.modules)


def steps(values):
    if not _MEASURED:
        return [0 for x in values]''')


def test_a_failed_final_check_puts_both_files_back(pytester: pytest.Pytester) -> None:
    write_project(pytester)
    plans = [("both", {"kernel.py": KERNEL_RIGHT_ONLY_WHEN_MEASURED, "caller.py": FAST_CALLER})]
    pytester.makeconftest(SCRIPTED.replace("{CANDIDATES}", repr(plans)))
    result = pytester.runpytest_subprocess("--aide-steps", "1", "-p", "no:randomly",
                                           "-p", "no:cacheprovider")
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert "Put back as they were: caller.py, kernel.py" in output, output
    assert (pytester.path / "caller.py").read_text() == CALLER
    assert (pytester.path / "kernel.py").read_text() == KERNEL
