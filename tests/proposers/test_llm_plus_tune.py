"""An LLM and the tuner in one search: each LLM candidate that becomes the best gets the
tuner's search of its own knobs; the best of those competes as usual."""

from __future__ import annotations

import json

import pytest
from llm_fake import FakeProvider, code_reply, use_fake_openai

from pytest_aide.proposers.base import ProposerConfigError
from pytest_aide.proposers.select import ModelSpec, parse_spec
from pytest_aide.settings import AideSettings


def test_plus_tune_is_parsed_and_tune_plus_tune_refused() -> None:
    assert parse_spec("openai:gpt-5-mini+tune") == ModelSpec("openai", "gpt-5-mini", True)
    assert parse_spec("claude-haiku-4-5+tune") == ModelSpec("anthropic", "claude-haiku-4-5",
                                                             True)
    with pytest.raises(ProposerConfigError, match="use --aide-model tune"):
        parse_spec("tune+tune")
    assert AideSettings().tune_children == 6


ORIGINAL = """\
import time


def work(values):
    time.sleep(0.02)
    return sum(values)
"""

#: What the LLM writes: faster, with a knob it marks for the tuner.
DRAFT = """\
import time

PAUSE = 0.008  # aide: 0.001..0.008


def work(values):
    time.sleep(PAUSE)
    return sum(values)
"""

TESTS = """\
import pytest
from slow import work


def test_work():
    assert work([1, 2, 3]) == 6


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    assert benchmark.pedantic(work, args=([1, 2, 3],), rounds=8, iterations=1) == 6
"""


def test_the_llms_best_candidate_has_its_knobs_tuned(
    pytester: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makepyfile(slow=ORIGINAL, test_slow=TESTS)
    use_fake_openai(monkeypatch)
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(DRAFT, "Sleep less, behind a knob.")))
    result = pytester.runpytest_subprocess(
        "--aide-model", "openai:some-model+tune", "--aide-base-url", fake.base_url,
        "-p", "no:cacheprovider", "--aide-steps", "4", "--aide-drafts", "1",
        "--aide-tune-children", "3", "--aide-debug-prob", "0", "--aide-sandbox", "off",
        "--aide-preserve-source")
    output = result.stdout.str()
    assert "up to 3 tuner evaluations of its numeric knobs" in output
    assert len(fake.received) == 1, output  # one LLM call: the other steps were the tuner's
    prompt = str(fake.received[0].body["messages"][-1]["content"])
    assert "# aide: 16..1024 pow2" in prompt  # the model is invited to mark its knobs
    run_dir = next((pytester.path / ".aide").glob("*/journal.json"))
    nodes = json.loads(run_dir.read_text())["nodes"]
    tuned = [n for n in nodes if n["plan"].startswith("tune node 1's knobs: ")]
    assert len(tuned) == 3, [n["plan"] for n in nodes]
    for node in tuned:  # the LLM's code, only the knob changed
        assert node["code"].replace(node["code"].split("PAUSE = ")[1].split("  #")[0],
                                    "0.008") == DRAFT
    assert "openai:some-model+tune" in output
    # the knob's best value is not the model's: the tuner found a better one, and it won
    journal = json.loads(run_dir.read_text())
    best = next(n for n in nodes if n["id"] == journal["best_id"])
    assert best in tuned, [(n["id"], n["plan"], n["metrics"]) for n in nodes]
    assert float(best["code"].split("PAUSE = ")[1].split("  #")[0]) < 0.008
