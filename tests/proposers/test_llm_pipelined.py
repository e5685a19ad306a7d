"""Proposals pipelined: with two workers, a second request reaches the provider while the
first is still unanswered (the requests overlap); with one, each waits for the last reply.

The order is read from the loopback server's own clock, not from the run's elapsed time, so
a loaded machine cannot make the test pass or fail: the first reply is held until another
request arrives (or ``HOLD`` seconds pass, which only a serial run waits out).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import SLOW_MODULE as SLOW
from llm_fake import FakeProvider, code_reply
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pytest_aide.journal import Journal

STEPS = 6
#: Seconds the first reply waits for a second request before it is sent anyway.
HOLD = 30.0
#: "step 3/6 improve <- 0  BUGGY: ..." at the start of a line: the step's number
STEP_LINE = re.compile(r"^step (\d+)/\d+ ", re.MULTILINE)


@pytest.fixture
def threaded_server() -> Iterator[HTTPServer]:
    """A loopback server that answers requests at the same time, as providers do."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


class TimedProvider(FakeProvider):
    """The fake provider, noting on its own clock when each request arrived and when its
    reply was sent; with ``hold``, the first reply waits for a second request."""

    def __init__(self, httpserver: HTTPServer, provider: str, hold: bool) -> None:
        super().__init__(httpserver, provider)
        self.hold = hold
        self.arrived: list[float] = []
        self.answered: list[float] = []
        self._changed = threading.Condition()

    def _handle(self, request: Request) -> Response:
        with self._changed:
            index = len(self.arrived)
            self.arrived.append(time.monotonic())
            self._changed.notify_all()
            if self.hold and index == 0:
                self._changed.wait_for(lambda: len(self.arrived) > 1, timeout=HOLD)
        response = super()._handle(request)
        with self._changed:
            self.answered.append(time.monotonic())  # in the order the replies were sent
        return response


def candidates() -> list[str]:
    """Distinct wrong candidates: each one is evaluated, none is confirmed or written."""
    return [re.sub(r"^CHUNK = 2 ", f"CHUNK = {chunk} ", SLOW, flags=re.M)
            .replace("total +=", "total -=") for chunk in (1, 3, 4, 6, 8, 12, 16, 24)]


def run(project: pytest.Pytester, server: HTTPServer, workers: int,
        monkeypatch: pytest.MonkeyPatch) -> tuple[TimedProvider, Journal]:
    server.clear()
    fake = TimedProvider(server, "openai", hold=workers > 1)
    fake.push(*[fake.text(code_reply(code)) for code in candidates()])
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    result = project.runpytest_subprocess(
        "--aide-steps", str(STEPS), "--aide-model", "openai:some-model",
        "--aide-base-url", fake.base_url, "--aide-workers", str(workers),
    )
    output = result.stdout.str()
    assert result.ret == 0, output
    assert sorted({int(m) for m in STEP_LINE.findall(output)}) == list(range(STEPS + 1)), output
    (path,) = project.path.glob(".aide/*/journal.json")
    journal = Journal.load(path)
    path.parent.rename(project.path / f"run-with-{workers}-workers")  # out of the next run's way
    return fake, journal


def test_two_workers_overlap_their_requests_and_one_does_not(
    slow_project: pytest.Pytester, threaded_server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, serial = run(slow_project, threaded_server, 1, monkeypatch)
    two, parallel = run(slow_project, threaded_server, 2, monkeypatch)
    assert len(one.arrived) == len(two.arrived) == STEPS
    # one worker sent each request only after the reply to the one before
    assert all(one.answered[i] <= one.arrived[i + 1] for i in range(STEPS - 1)), (
        one.arrived, one.answered)
    # two workers: the second request came while the first was still unanswered
    assert two.arrived[1] < two.answered[0], (two.arrived, two.answered)
    # every candidate failed its guards, and none was called tampered for the step lines
    # this run's own output (a file in the project, as pytester makes it) got meanwhile
    assert [n.status for n in parallel.nodes] == [n.status for n in serial.nodes]
    assert [n.status for n in parallel.nodes[1:]] == ["buggy"] * STEPS
    assert [n.id for n in parallel.nodes] == list(range(STEPS + 1))
