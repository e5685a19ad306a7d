"""Choosing the proposer from ``--aide-model``, ``AIDE_MODEL`` and the keys in the environment.

Every problem found here is a ProposerConfigError, raised before anything runs, so that a
missing key or a misspelt provider is a usage error and not twenty buggy steps. Provider
SDKs are imported only for the provider that is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pytest_aide.proposers.base import Proposer, ProposerConfigError
from pytest_aide.proposers.llm import RetryPolicy
from pytest_aide.proposers.prices import price_of
from pytest_aide.proposers.providers import BY_NAME, PROVIDERS


class ProposerSettings(Protocol):
    """The few settings that choose a proposer (``AideSettings`` has them); a protocol, so
    that proposers need not import the pytest layer."""

    model: str | None
    base_url: str | None
    seed: int
    reflect: bool
    price: tuple[float, float] | None  # USD per million tokens in, out (--aide-price)
    budget: float | None
    tune_children: int  # with "+tune": the tuner's evaluations per LLM candidate


#: The model used when only a provider is known (a key is set, or ``openai:`` is given).
DEFAULT_MODELS = {provider.name: provider.default_model for provider in PROVIDERS}

#: A local OpenAI-compatible server usually ignores the key, but the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"


def _spoken(items: list[str]) -> str:
    """``a, b or c``."""
    return " or ".join(filter(None, [", ".join(items[:-1]), items[-1]]))


SPEC_FORMS = (
    "'tune' (built-in, offline), "
    + ", ".join(f"'{p.name}:MODEL'" for p in PROVIDERS)
    + ", or a bare model name starting with "
    + _spoken([f"{', '.join(p.prefixes)} ({p.title})" for p in PROVIDERS])
)

TUNE_NOTICE = (
    "no LLM configured, using the built-in offline tuner (tune). To let an LLM write "
    f"candidates, set {_spoken([p.key_hint for p in PROVIDERS])}, or pass "
    "--aide-model openai:MODEL (with --aide-base-url for a local server)."
)


@dataclass
class ModelSpec:
    provider: str  # "tune" or a provider's name (providers.py)
    model: str = ""
    #: ``PROVIDER:MODEL+tune``: the tuner searches the knobs of the LLM's candidates too.
    tuned: bool = False


def make_proposer(
    settings: ProposerSettings, original_code: str, env: Mapping[str, str] | None = None,
    relpaths: Sequence[str] = (),
) -> tuple[Proposer, str | None]:
    """The proposer for these settings, and a one-line notice for the terminal (or None).
    ``relpaths``: with several target files, theirs (the tuner searches each one's knobs)."""
    env = os.environ if env is None else env
    spec, notice = choose_spec(settings, env)
    if spec.provider == "tune":
        from pytest_aide.proposers.tune.proposer import TuneProposer

        tuner = TuneProposer(original_code, seed=settings.seed, relpaths=relpaths)
        return tuner, " ".join(filter(None, [notice, tuner.space_text()]))
    unpriced = _unpriced_notice(spec, settings)
    llm = build_llm_proposer(spec, settings, env)
    if spec.tuned:
        from pytest_aide.proposers.tuned import TunedLLMProposer

        llm = TunedLLMProposer(llm, children=settings.tune_children, seed=settings.seed,
                               relpaths=relpaths)
        unpriced = "; ".join(filter(None, [unpriced, (
            f"each LLM candidate that becomes the best gets up to {settings.tune_children} "
            "tuner evaluations of its numeric knobs (--aide-tune-children)")]))
    notice = "; ".join(filter(None, [notice, unpriced])) or None
    return llm, notice


def _unpriced_notice(spec: ModelSpec, settings: ProposerSettings) -> str:
    """Said at the start when no cost can be estimated: the price table lacks the model and
    no ``--aide-price`` was given (a budget then cannot stop the run)."""
    if settings.price is not None or price_of(spec.provider, spec.model) is not None:
        return ""
    effect = ("--aide-budget cannot stop this run" if settings.budget is not None
              else "its cost is not estimated")
    return (f"no price is known for {spec.provider}:{spec.model}, so {effect}: pass "
            "--aide-price IN,OUT (USD per million input and output tokens)")


def choose_spec(settings: ProposerSettings, env: Mapping[str, str]) -> tuple[ModelSpec, str | None]:
    """From --aide-model, else AIDE_MODEL, else the first key that is set, else the tuner."""
    if settings.model and settings.model.strip():
        return parse_spec(settings.model, settings.base_url), None
    if env.get("AIDE_MODEL", "").strip():
        return parse_spec(env["AIDE_MODEL"], settings.base_url), None
    for provider in PROVIDERS:
        variable = next((v for v in provider.key_variables if env.get(v)), None)
        if variable:
            model = provider.default_model
            notice = (
                f"using {provider.name}:{model} ({variable} is set); "
                "choose another model with --aide-model"
            )
            return ModelSpec(provider.name, model), notice
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
    if spec.lower().endswith("+tune"):
        inner = parse_spec(spec[: -len("+tune")], base_url)
        if inner.provider == "tune":
            raise ProposerConfigError("'tune+tune' is the tuner alone: use --aide-model tune")
        return ModelSpec(inner.provider, inner.model, tuned=True)
    name, sep, model = spec.partition(":")
    if sep and name.lower() in BY_NAME:
        provider = BY_NAME[name.lower()]
        return ModelSpec(provider.name, model.strip() or provider.default_model)
    lowered = spec.lower()
    for provider in PROVIDERS:
        if lowered.startswith(provider.prefixes):
            return ModelSpec(provider.name, spec)
    if base_url:
        return ModelSpec("openai", spec)
    raise ProposerConfigError(f"unknown model {spec!r}: use {SPEC_FORMS}")


def build_llm_proposer(
    spec: ModelSpec, settings: ProposerSettings, env: Mapping[str, str]
) -> Proposer:
    from pytest_aide.proposers.llm import LLMProposer

    provider = BY_NAME[spec.provider]
    variable = provider.base_url_variable
    base_url = settings.base_url or (env.get(variable, "") if variable else "") or None
    key = api_key(spec.provider, env, base_url)
    backend = provider.make_backend(spec.model, key, base_url=base_url, retry=retry_policy(env))
    return LLMProposer(backend, reflect=settings.reflect, price=settings.price)


def api_key(provider_name: str, env: Mapping[str, str], base_url: str | None) -> str:
    provider = BY_NAME[provider_name]
    for variable in provider.key_variables:
        if env.get(variable):
            return env[variable]
    if provider.keyless_with_base_url and base_url:
        return PLACEHOLDER_KEY
    names = " or ".join(sorted(provider.key_variables))
    raise ProposerConfigError(f"--aide-model {provider.name}:... needs an API key: set {names}")


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
