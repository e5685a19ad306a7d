"""Proposals pipelined: with a provider that answers after a delay, two workers finish the
same steps in well under the time of one (the requests overlap each other and the tests)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import SLOW_MODULE as SLOW
from llm_fake import FakeProvider, code_reply
from pytest_httpserver import HTTPServer

from pytest_aide.journal import Journal

STEPS = 6
DELAY = 2.0
#: "step 3/6 improve <- 0  BUGGY: ...  best=...  15.0s  120 tok": the step and its elapsed time
STEP_LINE = re.compile(r"^step (\d+)/\d+ .*?  (?:(\d+)m)?(\d+(?:\.\d+)?)s(?:  \d+ tok.*)?$",
                       re.MULTILINE)


@pytest.fixture
def threaded_server() -> Iterator[HTTPServer]:
    """A loopback server that answers requests at the same time, as providers do."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def candidates() -> list[str]:
    """Distinct wrong candidates: each one is evaluated, none is confirmed or written."""
    return [re.sub(r"^CHUNK = 2 ", f"CHUNK = {chunk} ", SLOW, flags=re.M)
            .replace("total +=", "total -=") for chunk in (1, 3, 4, 6, 8, 12, 16, 24)]


def search_seconds(output: str) -> float:
    """Seconds from the baseline's step line to the last step's (the search alone)."""
    times = {int(m[1]): 60 * int(m[2] or 0) + float(m[3]) for m in STEP_LINE.finditer(output)}
    assert sorted(times) == list(range(STEPS + 1)), output
    return times[STEPS] - times[0]


def run(project: pytest.Pytester, server: HTTPServer, workers: int,
        monkeypatch: pytest.MonkeyPatch) -> tuple[float, Journal]:
    server.clear()
    fake = FakeProvider(server, "openai")
    fake.push(*[fake.slow(fake.text(code_reply(code)), DELAY) for code in candidates()])
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    result = project.runpytest_subprocess(
        "--aide-steps", str(STEPS), "--aide-model", "openai:some-model",
        "--aide-base-url", fake.base_url, "--aide-workers", str(workers),
    )
    assert result.ret == 0, result.stdout.str()
    (path,) = project.path.glob(".aide/*/journal.json")
    journal = Journal.load(path)
    path.parent.rename(project.path / f"run-with-{workers}-workers")  # out of the next run's way
    return search_seconds(result.stdout.str()), journal


def test_two_workers_take_at_most_six_tenths_of_the_time(
    slow_project: pytest.Pytester, threaded_server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, serial = run(slow_project, threaded_server, 1, monkeypatch)
    two, parallel = run(slow_project, threaded_server, 2, monkeypatch)
    assert one >= STEPS * DELAY  # one worker waited for every reply in turn
    assert two <= 0.6 * one, (one, two)
    # every candidate failed its guards, and none was called tampered for the step lines
    # this run's own output (a file in the project, as pytester makes it) got meanwhile
    assert [n.status for n in parallel.nodes] == [n.status for n in serial.nodes]
    assert [n.status for n in parallel.nodes[1:]] == ["buggy"] * STEPS
    assert [n.id for n in parallel.nodes] == list(range(STEPS + 1))
