"""CI's preflight: every tool the suite relies on must really work here, or CI stops at once.

A test whose tool is missing or unusable skips on a laptop; in CI that skip would hide a test
that did not run (tests/conftest.py turns skips into failures when ``CI`` is set, and this
says why before the suite starts). Each check runs the tool, as the tests do: bubblewrap
makes a sandbox (pytest-aide's own probe, and a bare ``bwrap --unshare-all``), Chromium
renders a page headless, torch computes, Triton runs a kernel under its interpreter, Ray
runs a task, scikit-learn and scipy import.

Run: ``python .ci/preflight.py`` (exit 1 and one line per problem when anything fails).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

TIMEOUT = 300

TRITON_KERNEL = """
import torch
import triton
import triton.language as tl


@triton.jit
def add(x, y, out, n, BLOCK: tl.constexpr):
    offsets = tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out + offsets, tl.load(x + offsets, mask=mask) + tl.load(y + offsets, mask=mask),
             mask=mask)


x = torch.arange(8, dtype=torch.float32)
out = torch.empty_like(x)
add[(1,)](x, x, out, 8, BLOCK=8)
assert torch.equal(out, 2 * x), out
"""

RAY_TASK = """
import ray

ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
try:
    assert ray.get(ray.remote(lambda: 41 + 1).remote()) == 42
finally:
    ray.shutdown()
"""


def run(command: list[str], env: dict[str, str] | None = None) -> str:
    """'' when ``command`` exits 0; else the last line it wrote (or why it did not run)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                              env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode == 0:
        return ""
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit code {done.returncode}"


def python(code: str, **env: str) -> str:
    with tempfile.TemporaryDirectory() as place:  # a file: Triton's JIT reads the source
        script = Path(place) / "check.py"
        script.write_text(textwrap.dedent(code))
        return run([sys.executable, str(script)], env={**os.environ, **env})


def bubblewrap() -> str:
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    bare = run(["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
                "--proc", "/proc", "--dev", "/dev", "true"])
    if bare:
        return f"bwrap cannot make a sandbox: {bare}"
    from pytest_aide.evaluation.sandbox import probe

    return probe()  # the sandbox exactly as the evaluations make it


def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        return "chromium is not installed (apt-get install chromium)"
    with tempfile.TemporaryDirectory() as profile:
        try:
            done = subprocess.run(
                [binary, "--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--no-first-run", f"--user-data-dir={profile}",
                 "--dump-dom", "data:text/html,<p>aide-preflight</p>"],
                capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"chromium did not run: {exc}"
    if "<p>aide-preflight</p>" not in done.stdout:
        lines = done.stderr.strip().splitlines()
        return f"chromium rendered nothing ({lines[-1] if lines else done.returncode})"
    return ""


CHECKS: dict[str, Callable[[], str]] = {
    "bubblewrap": bubblewrap,
    "chromium": chromium,
    "torch": lambda: python("import torch\nassert int(torch.ones(3).sum()) == 3\n"),
    "triton": lambda: python(TRITON_KERNEL, TRITON_INTERPRET="1"),
    "ray": lambda: python(RAY_TASK),
    "scikit-learn, scipy": lambda: python("import sklearn, scipy.stats\n"),
}


def main() -> int:
    problems = []
    for name, check in CHECKS.items():
        problem = check()
        print(f"preflight: {name}: {problem or 'ok'}", flush=True)
        if problem:
            problems.append(f"{name}: {problem}")
    if problems:
        print("error: CI cannot run every test here; their tests would skip or fail:",
              *problems, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
