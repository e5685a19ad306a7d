"""Choosing the proposer from ``--aide-model``, ``AIDE_MODEL`` and the keys in the environment.

Every problem found here is a ProposerConfigError, raised before anything runs, so that a
missing key or a misspelt provider is a usage error and not twenty buggy steps. Provider
SDKs are imported only for the provider that is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from pytest_aide.proposers.base import Proposer, ProposerConfigError
from pytest_aide.proposers.llm import RetryPolicy

PROVIDERS = ("openai", "gemini", "anthropic")


class ProposerSettings(Protocol):
    """The few settings that choose a proposer (``AideSettings`` has them); a protocol, so
    that proposers need not import the pytest layer."""

    model: str | None
    base_url: str | None
    seed: int
    reflect: bool

#: The model used when only a provider is known (a key is set, or ``openai:`` is given).
DEFAULT_MODELS = {
    "openai": "gpt-5.5",
    "gemini": "gemini-3.1-pro-preview",
    "anthropic": "claude-sonnet-4-6",
}

#: Environment variables that hold each provider's key, in the order they are read.
KEY_VARIABLES = {
    "openai": ("OPENAI_API_KEY",),
    "gemini": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),  # google-genai prefers GOOGLE_API_KEY
    "anthropic": ("ANTHROPIC_API_KEY",),
}

BASE_URL_VARIABLES = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}

#: Bare model names: which provider a prefix belongs to.
PREFIXES = (
    ("gpt-", "openai"),
    ("chatgpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("gemini-", "gemini"),
    ("claude-", "anthropic"),
)

#: A local OpenAI-compatible server usually ignores the key, but the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"

SPEC_FORMS = (
    "'tune' (built-in, offline), 'openai:MODEL', 'gemini:MODEL', 'anthropic:MODEL', or a "
    "bare model name starting with gpt-, o1, o3, o4, chatgpt (OpenAI), gemini- (Gemini) or "
    "claude- (Anthropic)"
)

TUNE_NOTICE = (
    "no LLM configured, using the built-in offline tuner (tune). To let an LLM write "
    "candidates, set OPENAI_API_KEY, GEMINI_API_KEY or ANTHROPIC_API_KEY, or pass "
    "--aide-model openai:MODEL (with --aide-base-url for a local server)."
)


@dataclass
class ModelSpec:
    provider: str  # "tune" or one of PROVIDERS
    model: str = ""


def make_proposer(
    settings: ProposerSettings, original_code: str, env: Mapping[str, str] | None = None
) -> tuple[Proposer, str | None]:
    """The proposer for these settings, and a one-line notice for the terminal (or None)."""
    env = os.environ if env is None else env
    spec, notice = choose_spec(settings, env)
    if spec.provider == "tune":
        from pytest_aide.proposers.tune.proposer import TuneProposer

        return TuneProposer(original_code, seed=settings.seed), notice
    return build_llm_proposer(spec, settings, env), notice


def choose_spec(settings: ProposerSettings, env: Mapping[str, str]) -> tuple[ModelSpec, str | None]:
    """From --aide-model, else AIDE_MODEL, else the first key that is set, else the tuner."""
    if settings.model and settings.model.strip():
        return parse_spec(settings.model, settings.base_url), None
    if env.get("AIDE_MODEL", "").strip():
        return parse_spec(env["AIDE_MODEL"], settings.base_url), None
    for provider in PROVIDERS:
        variable = next((v for v in KEY_VARIABLES[provider] if env.get(v)), None)
        if variable:
            model = DEFAULT_MODELS[provider]
            notice = (
                f"using {provider}:{model} ({variable} is set); "
                "choose another model with --aide-model"
            )
            return ModelSpec(provider, model), notice
    if settings.base_url:
        raise ProposerConfigError(
            "--aide-base-url needs the served model's name: pass --aide-model openai:MODEL"
        )
    return ModelSpec("tune"), TUNE_NOTICE


def parse_spec(text: str, base_url: str | None = None) -> ModelSpec:
    """``tune``, ``provider:model`` or a bare model name (provider picked by prefix).

    With a base URL, a bare name that no prefix claims is taken as a model served by an
    OpenAI-compatible server (``llama3.1:8b`` on Ollama, a path on vLLM).
    """
    spec = text.strip()
    if spec.lower() == "tune":
        return ModelSpec("tune")
    provider, sep, model = spec.partition(":")
    if sep and provider.lower() in PROVIDERS:
        provider = provider.lower()
        return ModelSpec(provider, model.strip() or DEFAULT_MODELS[provider])
    lowered = spec.lower()
    for prefix, owner in PREFIXES:
        if lowered.startswith(prefix):
            return ModelSpec(owner, spec)
    if base_url:
        return ModelSpec("openai", spec)
    raise ProposerConfigError(f"unknown model {spec!r}: use {SPEC_FORMS}")


def build_llm_proposer(
    spec: ModelSpec, settings: ProposerSettings, env: Mapping[str, str]
) -> Proposer:
    from pytest_aide.proposers.llm import LLMProposer

    base_url = settings.base_url or env.get(BASE_URL_VARIABLES.get(spec.provider, ""), "") or None
    key = api_key(spec.provider, env, base_url)
    retry = retry_policy(env)
    if spec.provider == "openai":
        from pytest_aide.proposers.openai import OpenAIChat

        backend = OpenAIChat(spec.model, key, base_url=base_url, retry=retry)
    elif spec.provider == "gemini":
        from pytest_aide.proposers.gemini import GeminiChat

        backend = GeminiChat(spec.model, key, base_url=base_url, retry=retry)
    else:
        from pytest_aide.proposers.anthropic import AnthropicChat

        backend = AnthropicChat(spec.model, key, base_url=base_url, retry=retry)
    return LLMProposer(backend, reflect=settings.reflect)


def api_key(provider: str, env: Mapping[str, str], base_url: str | None) -> str:
    for variable in KEY_VARIABLES[provider]:
        if env.get(variable):
            return env[variable]
    if provider == "openai" and base_url:
        return PLACEHOLDER_KEY
    names = " or ".join(sorted(KEY_VARIABLES[provider]))
    raise ProposerConfigError(f"--aide-model {provider}:... needs an API key: set {names}")


def retry_policy(env: Mapping[str, str]) -> RetryPolicy:
    """SDK timeout and retry count, adjustable with AIDE_LLM_TIMEOUT / AIDE_LLM_MAX_RETRIES."""
    policy = RetryPolicy()
    for variable, field_name, kind in (
        ("AIDE_LLM_TIMEOUT", "timeout", float),
        ("AIDE_LLM_MAX_RETRIES", "max_retries", int),
    ):
        raw = env.get(variable, "").strip()
        if not raw:
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise ProposerConfigError(f"{variable} must be a number, not {raw!r}") from None
        if value < 0 or (field_name == "timeout" and value == 0):
            raise ProposerConfigError(f"{variable} must be positive, not {raw!r}")
        setattr(policy, field_name, value)
    return policy
