"""Local Ray clusters of several nodes for the tests: a head without CPUs and worker nodes of
one CPU each, on loopback, started and ended by ``ray.cluster_utils.Cluster``."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from ray.cluster_utils import Cluster

#: Where Ray keeps the cluster's token, found before pytester moves $HOME.
TOKEN = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def head_and_two_workers() -> Iterator[Cluster]:
    """A head that runs nothing and worker nodes ``node_a`` and ``node_b`` (a custom
    resource each), with ports of their own: never another session's cluster."""
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "gcs_server_port": free_port(), "include_dashboard": False})
    try:
        for name in ("a", "b"):
            cluster.add_node(num_cpus=1, resources={f"node_{name}": 1})
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture
def same_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run in a subprocess sends a token when this process's Ray does (its nodes, started
    here, then ask for one); Ray fixes the mode when it is first used, so tests before this
    one (a token-mode run) may have set it."""
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    monkeypatch.setenv("RAY_AUTH_MODE", "token" if is_token_auth_enabled() else "disabled")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", TOKEN)


def run_while(project: pytest.Pytester, address: str, killer: Callable[[], None]
              ) -> pytest.RunResult:
    """A whole run (tuner, two workers) on the cluster at ``address`` while ``killer`` runs
    in a thread: it takes a node away mid-run."""
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        return project.runpytest_subprocess(
            "--aide-steps", "3", "--aide-model", "tune", "--aide-executor", "ray",
            "--aide-ray-address", address, "--aide-workers", "2",
            "--aide-confirm-rounds", "7", "--aide-preserve-source", "--aide-ray-wait", "120",
        )
    finally:
        thread.join(5)
