"""The examples searched twice, with two local workers and with two workers on a local Ray
cluster of three nodes (a head without CPUs, two worker nodes of one CPU each): the same
verdicts per node, evaluations on both worker nodes, and confirmed figures that agree.

Each run is a child pytest on a copy of the example (``--aide-model tune``: no LLM;
``--aide-preserve-source``), the two runs of an example one after the other. Printed per
example: the verdicts of the candidates both runs proposed (local against Ray), where the
Ray run's evaluations ran (node -> verdicts), and each run's best with its confirmed change
and interval. A difference is listed by candidate.

With ``--scripted``, the candidates are not the tuner's but a script's, each twice (one per
worker node, as it falls): the original with a comment (good), raising on import (buggy),
and changing the environment on import (tampered); a verdict that differs by node shows.

Run: ``python benchmarks/compare_ray_examples.py [steps] [--scripted] [--keep] [example ...]``
(default 4 steps, every example; roughly two to five minutes an example on a 2-core
machine; ``--keep``: the runs' directories are kept, and named).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ALL = ["python-hot-loop", "model-development", "hello-kernel-world", "triton-softmax"]


#: The scripted proposer (``--scripted``), loaded into the runs with ``-p
#: pytest_aide_scripted`` (a ``pytest_aide`` name: not forwarded to the evaluations).
SCRIPTED = '''
from pytest_aide.proposers.base import Proposal, SearchExhausted

TAILS = [("honest", "\\n_AIDE_SCRIPTED = {}\\n"),
         ("broken on import", "\\nraise RuntimeError('broken ({})')\\n"),
         ("changes the environment", "\\nimport os as _os\\n_os.environ['AIDE_CHEAT'] = '{}'\\n")]


class Scripted:
    name = "scripted"

    def __init__(self, original):
        self.todo = [(plan, original + tail.format(i)) for i in range(2) for plan, tail in TAILS]

    def propose(self, request):
        if not self.todo:
            raise SearchExhausted("the script is done")
        plan, code = self.todo.pop(0)
        return Proposal(plan, code)

    def observe(self, node, proposal):
        pass


def pytest_aide_make_proposer(original_code):
    return Scripted(original_code)
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def three_nodes() -> Iterator[str]:
    """A head without CPUs and two one-CPU worker nodes, with ports of their own."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "gcs_server_port": free_port(), "include_dashboard": False})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        cluster.shutdown()


def search(example: str, where: Path, steps: int, ray_address: str | None,
           scripted: bool) -> dict[str, Any]:
    """One run on a copy of ``example``; its journal and where each node ran."""
    project = where / example
    shutil.copytree(EXAMPLES / example, project, ignore=shutil.ignore_patterns("__pycache__"))
    logs = where / "runs"
    command = [sys.executable, "-m", "pytest", example, "-p", "no:cacheprovider",
               "--aide-steps", str(steps), "--aide-model", "tune", "--aide-workers", "2",
               "--aide-confirm-rounds", "7", "--aide-preserve-source",
               "--aide-log-dir", str(logs)]
    if ray_address:
        command += ["--aide-executor", "ray", "--aide-ray-address", ray_address,
                    "--aide-ray-wait", "300"]
    environment = dict(os.environ)
    if scripted:
        (where / "pytest_aide_scripted.py").write_text(SCRIPTED)
        command += ["-p", "pytest_aide_scripted"]
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(where), environment.get("PYTHONPATH")) if p)
    done = subprocess.run(command, cwd=where, capture_output=True, text=True, check=False,
                          env=environment)
    (journal_path,) = logs.glob("*/journal.json")
    journal = json.loads(journal_path.read_text())
    ran_on: dict[int, str] = {}
    for placement in journal_path.parent.glob("nodes/*/placement.txt"):
        found = re.fullmatch(r"(\d{4})", placement.parent.name)
        node = re.findall(r"ran on node (\w+)", placement.read_text())
        if found and node:
            ran_on[int(found.group(1))] = node[-1][:8]
    return {"journal": journal, "ran_on": ran_on, "exit": done.returncode,
            "output": done.stdout[-3000:] + done.stderr[-2000:]}


def code_key(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:10]


def best_line(journal: dict[str, Any]) -> str:
    best = next((n for n in journal["nodes"] if n["id"] == journal.get("best_id")), None)
    if best is None or best["id"] == 0:
        return "no better candidate"
    knobs = ", ".join(re.findall(r"^([A-Z_]+ = [^#\n]+?)\s+#\s*aide", best["code"], re.M))
    confirmed = best.get("confirmed") or {}
    change, low, high = (confirmed.get(k) for k in ("change", "low", "high"))
    figure = (f"{change:+.1%} [{low:+.1%}, {high:+.1%}]" if None not in (change, low, high)
              else json.dumps({k: v for k, v in confirmed.items() if k != "per_test"}))
    state = "confirmed" if confirmed.get("confirmed") else "NOT confirmed"
    root = journal["nodes"][0]
    measured = ", ".join(f"{nodeid.split('::')[-1]} {root['metrics'].get(nodeid)!s:.8} -> "
                         f"{value!s:.8}" for nodeid, value in best["metrics"].items())
    return f"node {best['id']} ({knobs}): {state} {figure}; searched: {measured}"


def compare(example: str, local: dict[str, Any], on_ray: dict[str, Any]) -> list[str]:
    """The comparison's lines; differences of verdict are named."""
    lines = [f"## {example} (exit: local {local['exit']}, Ray {on_ray['exit']})"]
    verdicts = {code_key(n["code"]): n["status"] for n in local["journal"]["nodes"]}
    lines.append("  steps, Ray: " + "; ".join(
        f"{n['id']} {n['plan'][:24]} on {on_ray['ran_on'].get(n['id'], '?')}: {n['status']}"
        for n in on_ray["journal"]["nodes"]))
    same = differ = 0
    for node in on_ray["journal"]["nodes"]:
        expected = verdicts.get(code_key(node["code"]))
        if expected is None:
            continue
        if expected == node["status"]:
            same += 1
        else:
            differ += 1
            lines.append(f"  DIFFERENT: Ray node {node['id']} {node['status']} "
                         f"({node['error'][:200]}), local {expected}")
    lines.append(f"  candidates in both runs: {same + differ}, same verdict: {same}")
    per_node: dict[str, Counter[str]] = defaultdict(Counter)
    for node in on_ray["journal"]["nodes"]:
        per_node[on_ray["ran_on"].get(node["id"], "?")][node["status"]] += 1
    for where, counts in sorted(per_node.items()):
        lines.append(f"  Ray node {where}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    lines.append("  local verdicts: " + ", ".join(
        f"{v} {k}" for k, v in Counter(n["status"] for n in local["journal"]["nodes"]).items()))
    lines.append(f"  best, local: {best_line(local['journal'])}")
    lines.append(f"  best, Ray:   {best_line(on_ray['journal'])}")
    for label, run in (("local", local), ("Ray", on_ray)):
        if run["exit"] != 0:
            lines.append(f"  {label} output:\n{run['output']}")
    return lines


def main() -> None:
    arguments = sys.argv[1:]
    scripted, keep = "--scripted" in arguments, "--keep" in arguments
    arguments = [a for a in arguments if a not in ("--scripted", "--keep")]
    steps = int(arguments[0]) if arguments else 4
    examples = arguments[1:] or ALL
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    with tempfile.TemporaryDirectory(prefix="aide-ray-examples-") as scratch, \
            three_nodes() as address:
        tmp = tempfile.mkdtemp(prefix="aide-ray-examples-") if keep else scratch
        if keep:
            print(f"runs kept in {tmp}", flush=True)
        for example in examples:
            local = search(example, Path(tmp) / f"{example}-local", steps, None, scripted)
            on_ray = search(example, Path(tmp) / f"{example}-ray", steps, address, scripted)
            print("\n".join(compare(example, local, on_ray)), flush=True)


if __name__ == "__main__":
    main()
