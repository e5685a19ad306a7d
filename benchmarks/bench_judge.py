"""What judging behaviour costs, side by side, on each example.

For each example: a plain ``python -m pytest`` of its tests; the probe of the original that
chooses the guards by coverage and records the tests' calls into the target (once per run;
goal: at most 2x the plain run); and an evaluation of the original with and without the
replay of the recorded calls and the fresh-input timing (every candidate's; goal: at most
1.15x). Medians of ``--repeats`` runs, measured alternately, unsandboxed (the sandbox costs
the same on both sides).

    python benchmarks/bench_judge.py [--repeats 5] [--examples python-hot-loop ...]

Triton's example runs under ``TRITON_INTERPRET=1`` on a CPU machine (slow, but real).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["python-hot-loop", "model-development", "hello-kernel-world", "triton-softmax"]


class _Collect:
    def __init__(self) -> None:
        self.items: list[pytest.Item] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.items = list(session.items)


def study_of(example: Path):
    from pytest_aide.study import build_studies

    collector = _Collect()
    with contextlib.redirect_stdout(io.StringIO()):  # the listing is not the benchmark's
        pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", str(example)],
                    plugins=[collector])
    (study,) = build_studies(collector.items, ROOT)
    return study


def plain_seconds(example: Path) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    str(example)], cwd=ROOT, capture_output=True, check=False)
    return time.perf_counter() - began


def bench(example: Path, repeats: int) -> dict[str, float]:
    from pytest_aide.evaluation.evaluator import Evaluator
    from pytest_aide.guards.baseline import Baseline

    study = study_of(example)
    suite = [example.relative_to(ROOT).as_posix()]
    scratch = Path(tempfile.mkdtemp(prefix="aide-bench-judge-"))
    evaluator = Evaluator(study, ROOT, protected_exclude=[scratch])
    plain, probe, bare, judged = [], [], [], []
    calls: list = []
    for index in range(repeats):
        plain.append(plain_seconds(example))
        began = time.perf_counter()
        probed = evaluator.evaluate(None, scratch / f"probe{index}", suite, baseline=None,
                                    coverage=True, record_calls=True)
        probe.append(time.perf_counter() - began)
        calls = probed.recorded_calls or calls
        first = {o.nodeid: next((c.id for c in calls if c.test == o.nodeid), None)
                 for o in study.objectives}
        baseline = Baseline(calls=calls, fresh_calls={k: v for k, v in first.items()
                                                      if v is not None})
        began = time.perf_counter()
        evaluator.evaluate(None, scratch / f"bare{index}", baseline=baseline)
        bare.append(time.perf_counter() - began)
        began = time.perf_counter()
        evaluator.evaluate(None, scratch / f"judged{index}", baseline=baseline, replay=True,
                           fresh=True)
        judged.append(time.perf_counter() - began)
    median = statistics.median
    return {"plain": median(plain), "probe": median(probe), "bare": median(bare),
            "judged": median(judged), "calls": len(calls)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--examples", nargs="*", default=EXAMPLES)
    args = parser.parse_args()
    os.environ.setdefault("TRITON_INTERPRET", "1")
    print(f"cpus={os.cpu_count()} python={sys.version.split()[0]} repeats={args.repeats}")
    print(f"{'example':<20} {'plain s':>8} {'probe s':>8} {'probe/plain':>11} "
          f"{'eval s':>7} {'+replay+fresh s':>15} {'ratio':>6} {'calls':>5}")
    for name in args.examples:
        row = bench(ROOT / "examples" / name, args.repeats)
        print(f"{name:<20} {row['plain']:>8.2f} {row['probe']:>8.2f} "
              f"{row['probe'] / row['plain']:>11.2f} {row['bare']:>7.2f} "
              f"{row['judged']:>15.2f} {row['judged'] / row['bare']:>6.2f} {row['calls']:>5}")


if __name__ == "__main__":
    main()
