"""A whole run on three nodes whose measuring node's raylet is killed (SIGKILL) mid-run: the
run finishes with a real best, says what was lost and measured again, blames no candidate,
and keeps Ray's own log lines (the dead raylet's last ones) out of pytest's output.

The cluster is this module's own: a node of it dies for good."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusters import head_and_two_workers, run_while, same_auth  # noqa: F401  (same_auth: a fixture)
from ray._private import ray_constants
from ray.cluster_utils import Cluster

from pytest_aide.journal import Journal, Status

#: What Ray publishes to every driver when a raylet dies (its agents read its log's tail).
RAY_LINES = ("Raylet is terminated", "Last 20 lines of the Raylet logs", "[state-dump]")


@pytest.fixture(scope="module")
def nodes() -> Iterator[Cluster]:
    with head_and_two_workers() as cluster:
        yield cluster


def measuring_node(run: Path) -> str:
    """The node the original was measured on, from its placement (``ran on node ID``)."""
    placement = (run / "nodes" / "0000" / "placement.txt").read_text()
    found = re.search(r"ran on node (\w+)", placement)
    assert found, placement
    return found.group(1)


def kill_raylet_mid_run(nodes: Cluster, project: Path, killed: list[str]) -> None:
    """Once the original is measured and the first candidate is being evaluated, SIGKILL the
    raylet of the node that measured it (its agents and workers are left to notice)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        runs = [p.parent for p in project.glob(".aide/*/baseline.json")]
        if runs and (runs[0] / "nodes" / "0001").exists():
            node_id = measuring_node(runs[0])
            (victim,) = [n for n in nodes.worker_nodes if n.node_id == node_id]
            raylet = victim.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process
            os.kill(raylet.pid, signal.SIGKILL)
            killed.append(node_id)
            return
        time.sleep(0.05)


@pytest.mark.usefixtures("same_auth")
def test_a_run_outlives_its_measuring_nodes_raylet_killed(nodes, slow_project) -> None:
    killed: list[str] = []
    result = run_while(slow_project, nodes.address,
                       lambda: kill_raylet_mid_run(nodes, slow_project.path, killed))
    output = result.stdout.str() + result.stderr.str()
    assert killed, output  # the raylet was killed while the run went on
    assert result.ret == 0, output
    (victim,) = [n for n in nodes.worker_nodes if n.node_id == killed[0]]
    result.stdout.fnmatch_lines([
        f"aide: the measuring node {victim.node_ip_address} ({killed[0]:.8}) was lost; timed "
        "measurements moved to *",
        "*the original*measured again on the new measuring node*",
    ])
    (run,) = [p.parent for p in slow_project.path.glob(".aide/*/journal.json")]
    journal = Journal.load(run / "journal.json")
    # the journal says it too, and no candidate is buggy or tampered for the lost node
    assert f"the measuring node {victim.node_ip_address} ({killed[0]:.8}) was lost" in (
        journal.outcome or ""), journal.outcome
    assert [n.status for n in journal.nodes] == [Status.GOOD] * 4, [n.error for n in journal.nodes]
    assert any(n.remeasure_reason and "measuring node was lost" in n.remeasure_reason
               for n in journal.nodes)
    # a correct best: a larger CHUNK (fewer sleeps) beat the original
    assert journal.best is not None and journal.best is not journal.root
    chunk = re.search(r"CHUNK = (\d+)", journal.best.code)
    assert chunk and int(chunk.group(1)) > 2, journal.best.code
    # Ray's own lines stay out of pytest's output; they are kept in the run directory
    for line in RAY_LINES:
        assert line not in output
    kept = (run / "ray.log").read_text()
    assert "Raylet is terminated" in kept and "[state-dump]" in kept, kept
