"""The LLM providers pytest-aide knows: one row each.

Adding a provider is one row here plus one backend module (a ``ChatBackend``, see
``llm.py``) that speaks the provider's SDK; ``select.py`` reads only this table. Nothing
here imports an SDK: a row names its modules, imported when that provider is used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_aide.proposers.base import ProposerConfigError

if TYPE_CHECKING:
    from pytest_aide.proposers.llm import ChatBackend, RetryPolicy


@dataclass(frozen=True)
class Provider:
    """One LLM provider: how it is named, keyed, installed and spoken to."""

    name: str  # the ``name:`` of ``--aide-model name:MODEL``
    title: str  # how messages name it
    default_model: str  # used when only the provider is known (a key is set, or ``name:``)
    key_variables: tuple[str, ...]  # environment variables holding the key, in reading order
    prefixes: tuple[str, ...]  # bare model names that belong to it, as the help lists them
    sdk_module: str  # imported when the provider is used, never at plugin load
    sdk_package: str  # what pip installs
    extra: str  # pytest-aide's extra that installs the SDK
    backend: str  # ``module:Class`` of its ChatBackend
    base_url_variable: str = ""  # the SDK's own endpoint variable, if it reads one
    advertised_key: str = ""  # the key variable notices name (default: the first)
    #: An OpenAI-compatible local server usually ignores the key, but the SDK insists on one:
    #: with a base URL and no key, a placeholder is sent.
    keyless_with_base_url: bool = False

    @property
    def key_hint(self) -> str:
        return self.advertised_key or self.key_variables[0]

    def import_sdk(self) -> Any:
        """The provider's SDK, or a usage error that says how to install it."""
        try:
            return importlib.import_module(self.sdk_module)
        except ImportError:
            raise ProposerConfigError(
                f"the {self.sdk_package} package is not installed: "
                f"pip install 'pytest-aide[{self.extra}]'"
            ) from None

    def make_backend(
        self, model: str, api_key: str, *, base_url: str | None, retry: RetryPolicy
    ) -> ChatBackend:
        module, _, name = self.backend.partition(":")
        backend_class = getattr(importlib.import_module(module), name)
        return backend_class(model, api_key, base_url=base_url, retry=retry)


#: In the order a key in the environment picks the default provider.
PROVIDERS: tuple[Provider, ...] = (
    Provider(
        name="openai",
        title="OpenAI",
        default_model="gpt-5.5",
        key_variables=("OPENAI_API_KEY",),
        prefixes=("gpt-", "o1", "o3", "o4", "chatgpt"),
        sdk_module="openai",
        sdk_package="openai",
        extra="openai",
        backend="pytest_aide.proposers.openai:OpenAIChat",
        base_url_variable="OPENAI_BASE_URL",
        keyless_with_base_url=True,
    ),
    Provider(
        name="gemini",
        title="Gemini",
        default_model="gemini-3.1-pro-preview",
        key_variables=("GOOGLE_API_KEY", "GEMINI_API_KEY"),  # google-genai prefers GOOGLE_
        advertised_key="GEMINI_API_KEY",
        prefixes=("gemini-",),
        sdk_module="google.genai",
        sdk_package="google-genai",
        extra="gemini",
        backend="pytest_aide.proposers.gemini:GeminiChat",
    ),
    Provider(
        name="anthropic",
        title="Anthropic",
        default_model="claude-sonnet-4-6",
        key_variables=("ANTHROPIC_API_KEY",),
        prefixes=("claude-",),
        sdk_module="anthropic",
        sdk_package="anthropic",
        extra="anthropic",
        backend="pytest_aide.proposers.anthropic:AnthropicChat",
        base_url_variable="ANTHROPIC_BASE_URL",
    ),
)

BY_NAME: dict[str, Provider] = {provider.name: provider for provider in PROVIDERS}


def provider_named(name: str) -> Provider:
    return BY_NAME[name]
