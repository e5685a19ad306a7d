"""Choosing the proposer: model specs, AIDE_MODEL, keys, defaults; and the price table."""

from __future__ import annotations

import pytest

from pytest_aide.journal import Usage
from pytest_aide.proposers.base import ProposerConfigError
from pytest_aide.proposers.prices import estimate_cost, price_of
from pytest_aide.proposers.select import (
    DEFAULT_MODELS,
    ModelSpec,
    choose_spec,
    make_proposer,
    parse_spec,
    retry_policy,
)
from pytest_aide.settings import AideSettings


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("tune", ModelSpec("tune")),
        ("openai:gpt-5.5", ModelSpec("openai", "gpt-5.5")),
        ("gemini:gemini-3.1-pro-preview", ModelSpec("gemini", "gemini-3.1-pro-preview")),
        ("anthropic:claude-sonnet-4-6", ModelSpec("anthropic", "claude-sonnet-4-6")),
        ("openai:llama3.1:8b", ModelSpec("openai", "llama3.1:8b")),
        ("openai:", ModelSpec("openai", DEFAULT_MODELS["openai"])),
        ("gpt-4.1-mini", ModelSpec("openai", "gpt-4.1-mini")),
        ("o3", ModelSpec("openai", "o3")),
        ("o4-mini", ModelSpec("openai", "o4-mini")),
        ("chatgpt-4o-latest", ModelSpec("openai", "chatgpt-4o-latest")),
        ("gemini-3-flash-preview", ModelSpec("gemini", "gemini-3-flash-preview")),
        ("claude-opus-4-5", ModelSpec("anthropic", "claude-opus-4-5")),
    ],
)
def test_parse_spec(spec: str, expected: ModelSpec) -> None:
    assert parse_spec(spec) == expected


def test_unknown_bare_name_lists_the_forms() -> None:
    with pytest.raises(ProposerConfigError, match=r"unknown model 'llama3'.*openai:MODEL"):
        parse_spec("llama3")


def test_unknown_bare_name_with_a_base_url_is_an_openai_compatible_model() -> None:
    assert parse_spec("llama3.1:8b", base_url="http://127.0.0.1:11434/v1") == ModelSpec(
        "openai", "llama3.1:8b"
    )


def test_option_wins_over_aide_model_and_keys() -> None:
    settings = AideSettings(model="anthropic:claude-haiku-4-5")
    env = {"AIDE_MODEL": "gemini:x", "OPENAI_API_KEY": "k"}
    assert choose_spec(settings, env) == (ModelSpec("anthropic", "claude-haiku-4-5"), None)


def test_aide_model_env_is_used_without_the_option() -> None:
    env = {"AIDE_MODEL": "gemini:gemini-3-flash-preview", "OPENAI_API_KEY": "k"}
    spec, notice = choose_spec(AideSettings(), env)
    assert spec == ModelSpec("gemini", "gemini-3-flash-preview") and notice is None


@pytest.mark.parametrize(
    ("env", "provider", "variable"),
    [
        ({"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}, "openai", "OPENAI_API_KEY"),
        ({"GEMINI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}, "gemini", "GEMINI_API_KEY"),
        ({"GOOGLE_API_KEY": "k"}, "gemini", "GOOGLE_API_KEY"),
        ({"ANTHROPIC_API_KEY": "k"}, "anthropic", "ANTHROPIC_API_KEY"),
    ],
)
def test_first_provider_with_a_key_gets_its_default_model(
    env: dict[str, str], provider: str, variable: str
) -> None:
    spec, notice = choose_spec(AideSettings(), env)
    assert spec == ModelSpec(provider, DEFAULT_MODELS[provider])
    assert notice is not None and variable in notice and "--aide-model" in notice


def test_no_model_and_no_key_falls_back_to_the_tuner_with_a_notice() -> None:
    spec, notice = choose_spec(AideSettings(), {})
    assert spec == ModelSpec("tune")
    assert notice is not None
    assert "OPENAI_API_KEY" in notice and "--aide-model" in notice


def test_tune_spec_builds_the_tuner(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tuner is another module's; here only the call make_proposer makes is checked."""
    import sys
    import types

    made = {}

    class FakeTune:
        name = "tune"

        def __init__(self, original_code: str, seed: int = 0, relpaths=()) -> None:
            made.update(code=original_code, seed=seed, relpaths=relpaths)

        def space_text(self) -> str:
            return "The tuner searches 1 literal(s): X."

    module = types.ModuleType("pytest_aide.proposers.tune.proposer")
    module.TuneProposer = FakeTune  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pytest_aide.proposers.tune.proposer", module)
    proposer, notice = make_proposer(AideSettings(model="tune", seed=7), "X = 1\n", env={})
    assert isinstance(proposer, FakeTune)
    assert notice == "The tuner searches 1 literal(s): X."  # the header says what it searches
    assert made == {"code": "X = 1\n", "seed": 7, "relpaths": ()}  # one target: no files


def test_base_url_without_a_model_asks_for_one() -> None:
    with pytest.raises(ProposerConfigError, match="--aide-model openai:MODEL"):
        choose_spec(AideSettings(base_url="http://127.0.0.1:8000/v1"), {})


def test_gemini_missing_key_names_both_variables() -> None:
    with pytest.raises(ProposerConfigError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        make_proposer(AideSettings(model="gemini:gemini-3-flash-preview"), "", env={})


def test_anthropic_needs_its_key_even_with_a_base_url() -> None:
    settings = AideSettings(model="claude-haiku-4-5", base_url="http://127.0.0.1:1")
    with pytest.raises(ProposerConfigError, match="ANTHROPIC_API_KEY"):
        make_proposer(settings, "", env={})


def test_retry_policy_from_the_environment() -> None:
    policy = retry_policy({"AIDE_LLM_TIMEOUT": "12.5", "AIDE_LLM_MAX_RETRIES": "0"})
    assert (policy.timeout, policy.max_retries) == (12.5, 0)
    with pytest.raises(ProposerConfigError, match="AIDE_LLM_TIMEOUT"):
        retry_policy({"AIDE_LLM_TIMEOUT": "soon"})


def test_selecting_a_provider_imports_only_its_sdk() -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from pytest_aide.proposers.select import make_proposer\n"
        "from pytest_aide.settings import AideSettings\n"
        "make_proposer(AideSettings(model='anthropic:claude-haiku-4-5'), '', "
        "env={'ANTHROPIC_API_KEY': 'k'})\n"
        "sdks = {'openai', 'anthropic', 'google'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & sdks))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['anthropic']"


def test_prices() -> None:
    assert price_of("anthropic", "claude-sonnet-4-5-20250929") == price_of(
        "anthropic", "claude-sonnet-4-5"
    )
    assert price_of("openai", "gpt-5-2025-08-07") == price_of("openai", "gpt-5")
    assert price_of("gemini", "models/gemini-2.5-flash") == (0.30, 2.50)
    assert estimate_cost("openai", "gpt-4o-mini", Usage(1_000_000, 500_000)) == pytest.approx(
        0.15 + 0.30
    )
    assert estimate_cost("openai", "my-local-model", Usage(10, 10)) is None
    for provider, model in DEFAULT_MODELS.items():
        assert price_of(provider, model) is not None


def test_every_provider_row_names_its_backend_and_sdk() -> None:
    """The table is the only place a provider is described: its backend class says the same
    name, and its SDK module is the one the backend speaks."""
    import importlib

    from pytest_aide.proposers.providers import PROVIDERS

    for provider in PROVIDERS:
        module, _, name = provider.backend.partition(":")
        backend = getattr(importlib.import_module(module), name)
        assert backend.provider == provider.name
        assert provider.import_sdk().__name__ == provider.sdk_module
        assert provider.key_hint in provider.key_variables


def test_a_missing_sdk_says_which_extra_installs_it() -> None:
    from dataclasses import replace

    from pytest_aide.proposers.providers import provider_named

    missing = replace(provider_named("gemini"), sdk_module="no_such_sdk_for_aide")
    with pytest.raises(ProposerConfigError, match=r"google-genai package is not installed: "
                       r"pip install 'pytest-aide\[gemini\]'"):
        missing.import_sdk()
