"""What the tests on several Ray nodes share: the driver's auth mode."""

from __future__ import annotations

import pytest
from clusters import TOKEN


@pytest.fixture
def same_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run in a subprocess sends a token when this process's Ray does (its nodes, started
    here, then ask for one); Ray fixes the mode when it is first used, so tests before this
    one (a token-mode run) may have set it."""
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    monkeypatch.setenv("RAY_AUTH_MODE", "token" if is_token_auth_enabled() else "disabled")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", TOKEN)
