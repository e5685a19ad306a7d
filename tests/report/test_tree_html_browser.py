"""tree.html in a real browser: headless Chromium runs its script, draws every node, and
reports no error. A screenshot is kept (in ``$AIDE_ARTIFACTS`` when set) for a person to see.

Chromium is the Debian package ``chromium``; without it the test skips, except in CI (``$CI``
set), where a missing browser must not pass silently.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import IN_CI
from report_journals import (
    failed_baseline_journal,
    multi_objective_journal,
    single_objective_journal,
)

from pytest_aide.report.tree_html import write_tree_html

WINDOW = (1400, 1000)


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        message = "chromium not found (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("AIDE_ARTIFACTS") or tmp_path / "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        binary,
        "--headless=new",
        "--no-sandbox",  # root in containers and CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.mark.parametrize(
    "make", [single_objective_journal, multi_objective_journal, failed_baseline_journal]
)
def test_tree_html_renders_every_node_without_errors(
    chromium: str, artifacts: Path, tmp_path: Path, make
) -> None:
    journal = make()
    name = f"tree-{make.__name__.removesuffix('_journal')}"
    page = write_tree_html(journal, artifacts / f"{name}.html")

    screenshot = artifacts / f"{name}.png"
    run = run_chromium(
        chromium, tmp_path / "profile", "--dump-dom", f"--screenshot={screenshot}", page.as_uri()
    )
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    console_errors = [
        line
        for line in run.stderr.splitlines()
        if ":CONSOLE" in line and re.search(r"Uncaught|Error", line)
    ]
    assert console_errors == []
    assert 'id="aide-error"' not in dom, re.findall(r'<pre id="aide-error">(.*?)</pre>', dom)
    count = len(journal.nodes)
    assert f'data-rendered-nodes="{count}"' in dom
    assert len(re.findall(r'<g class="node[^"]*" data-node-id="\d+"', dom)) == count
    if any(node.is_good for node in journal.nodes):
        assert len(re.findall(r'data-point-id="\d+"', dom)) == count  # each node in the chart
    else:
        assert "No good node has this metric." in dom
    selected = journal.best_id if journal.best_id is not None else 0
    assert re.search(rf'<g class="node[^"]*selected[^"]*" data-node-id="{selected}"', dom)
    assert "plan of #" in dom  # the detail panel shows the selected node

    assert png_size(screenshot) == WINDOW
    assert screenshot.stat().st_size > 20_000  # a drawn page, not a blank one


def test_a_large_speedup_is_drawn_on_a_log_scale_with_units_and_the_runs_whole_time(
    chromium: str, artifacts: Path, tmp_path: Path
) -> None:
    """A -99% change on a linear axis would squash every other node onto the baseline's
    line; the page also gives the whole run's time, confirmation and final check included."""
    journal = single_objective_journal()
    best = journal[journal.best_id]
    best.metrics = {nodeid: value / 100 for nodeid, value in best.metrics.items()}
    journal.phase_seconds = {"search": 12.0, "confirmation": 40.0, "final check": 6.0}
    page = write_tree_html(journal, artifacts / "tree-log-scale.html")
    run = run_chromium(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    assert 'id="aide-error"' not in dom
    assert 'data-scale="log"' in dom and ">log scale<" in dom
    ticks = re.findall(r'<text x="58" y="[\d.]+" text-anchor="end">([^<]+)</text>', dom)
    assert ticks and all(tick.endswith((" ms", " \u00b5s")) for tick in ticks), ticks
    assert "1.25 ms → 11 \u00b5s" in dom  # the tile: baseline and best, with units
    assert "58.0s: search 12.0s, confirmation 40.0s, final check 6.0s" in dom


def test_a_small_change_stays_on_a_linear_scale(chromium: str, tmp_path: Path) -> None:
    page = write_tree_html(single_objective_journal(), tmp_path / "tree.html")
    run = run_chromium(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert 'data-scale="linear"' in run.stdout and ">log scale<" not in run.stdout
