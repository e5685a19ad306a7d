"""The LLM proposer: one conversation per proposal, whatever the provider.

A provider module supplies a ``ChatBackend`` (one SDK call: system text and turns in, text,
finish state and tokens out). This module holds the policy around it, the same for every
provider: ask; ask again (at most twice) when the reply holds no code; once, ask for edit
blocks when the reply was cut off at the token limit; optionally reflect; add up the tokens.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pytest_aide import symbols
from pytest_aide.journal import Node, Usage
from pytest_aide.proposers import prompts
from pytest_aide.proposers.base import (
    Proposal,
    ProposalRequest,
    ProposerError,
    ProposerRefused,
    ProposerRequestError,
)
from pytest_aide.proposers.prices import estimate_cost
from pytest_aide.proposers.replies import (
    NoCodeError,
    ParsedReply,
    parse_files_reply,
    parse_reply,
)
from pytest_aide.sources import Sources

#: Extra requests when a reply holds no code.
NO_CODE_RETRIES = 2
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+\S", re.MULTILINE)
#: HTTP statuses that no retry mends, and what each says about the set-up.
REFUSALS = {
    400: "the request was rejected (is the model a chat model of this provider?)",
    401: "the key was not accepted (check the provider's key variable)",
    403: "the key may not use this model or endpoint",
    404: "no such model or endpoint (check --aide-model and --aide-base-url)",
}


@dataclass
class Turn:
    role: str  # "user" or "assistant"
    text: str


@dataclass
class Completion:
    """One reply, in provider-neutral terms."""

    text: str
    truncated: bool  # stopped by the output token limit
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = ""

    @property
    def usage(self) -> Usage:
        return Usage(self.input_tokens, self.output_tokens)


@dataclass
class RetryPolicy:
    """Timeout and retries handed to the SDK (its own retry machinery does the work).

    ``initial_delay``/``max_delay`` reach only SDKs that accept them (google-genai); the
    openai and anthropic SDKs use their built-in backoff (0.5 s doubling up to 8 s, or the
    server's retry-after).
    """

    max_retries: int = 4
    timeout: float = 600.0
    initial_delay: float = 1.0
    max_delay: float = 30.0


class ChatBackend(Protocol):
    provider: str
    model: str
    endpoint: str  # the URL its requests go to, for messages

    def complete(self, system: str, turns: list[Turn]) -> Completion:
        """One request; raises ProposerRequestError when it fails after the SDK's retries."""
        ...


class LLMProposer:
    """Proposals from a chat model, through one of the provider backends."""

    #: Safe to call from several threads at once (the SDKs' clients are): a parallel search
    #: keeps several requests in flight.
    concurrent = True

    def __init__(self, backend: ChatBackend, *, reflect: bool = False,
                 price: tuple[float, float] | None = None) -> None:
        self.backend = backend
        self.reflect = reflect
        self.price = price  # USD per million tokens in and out; else the price table's
        self.name = f"{backend.provider}:{backend.model}"

    def propose(self, request: ProposalRequest) -> Proposal:
        usage = Usage()
        request = narrowed(request)
        try:
            prompt = prompts.build_prompt(request)
            if request.also:
                reply, spent = ask_for_files(self.backend, prompt, request)
            else:
                reply, spent = ask_for_code(
                    self.backend, prompt, request.parent.code, request.target_path,
                    request.symbol
                )
            usage = usage.add(spent)
            plan, code = reply.plan, reply.code
            if self.reflect and not request.also:  # reflection reads one file
                plan, code, spent = reflect(self.backend, request, plan, code)
                usage = usage.add(spent)
        except ProposerError as exc:
            # The tokens of a failed proposal were still spent: the search may count them.
            exc.usage = self._priced(usage.add(spent_by(exc)))
            raise
        return Proposal(plan=plan, code=code, usage=self._priced(usage))

    def observe(self, node: Node, proposal: Proposal | None) -> None:
        """Nothing to learn here: the next request carries the journal's memory."""

    def _priced(self, usage: Usage) -> Usage:
        cost = estimate_cost(self.backend.provider, self.backend.model, usage, self.price)
        return Usage(usage.input_tokens, usage.output_tokens, cost)


def narrowed(request: ProposalRequest) -> ProposalRequest:
    """The request as the prompt is built from it: a function or class target that the
    parent's code does not define (a candidate of the tuner may have moved it) falls back
    to the whole module, rather than failing every step from that parent."""
    if request.also:
        sources = Sources.decode(request.parent.code, [f.path for f in request.files])
        files = [dataclasses.replace(f, symbol="") if f.symbol and symbols.find(
                     sources.text(f.path), f.symbol) is None else f for f in request.files]
        return dataclasses.replace(request, symbol=files[0].symbol, also=files[1:])
    if request.symbol and symbols.find(request.parent.code, request.symbol) is None:
        return dataclasses.replace(request, symbol="")
    return request


def ask_for_files(backend: ChatBackend, prompt: prompts.Prompt, request: ProposalRequest
                  ) -> tuple[ParsedReply, Usage]:
    """``ask_for_code`` with several target files: the reply answers per file."""
    parent = Sources.decode(request.parent.code, [f.path for f in request.files])
    return ask_for_code(backend, prompt, request.parent.code, request.target_path,
                        parse=lambda text: parse_files_reply(text, parent, request.files),
                        no_code_again=prompts.NO_CODE_AGAIN_FILES)


def ask_for_code(
    backend: ChatBackend, prompt: prompts.Prompt, parent_code: str, filename: str,
    symbol: str = "", parse: Callable[[str], ParsedReply] | None = None,
    no_code_again: str = "",
) -> tuple[ParsedReply, Usage]:
    """Ask until a reply yields a candidate, within the bounds above; else ProposerError.

    ``symbol``: a function or class target, the only part of the parent that may change.
    ``parse``, ``no_code_again``: how a reply is read and the request when it held no code,
    other than one file's (several target files). A raised ProposerError carries the tokens
    spent so far as ``usage``.
    """
    no_code_again = no_code_again or (
        prompts.NO_CODE_AGAIN_SYMBOL.format(symbol=symbol) if symbol else prompts.NO_CODE_AGAIN)
    parse = parse or (lambda text: parse_reply(text, parent_code, filename, symbol))
    turns = [Turn("user", prompt.user)]
    usage = Usage()
    no_code_left = NO_CODE_RETRIES
    truncation_retried = False
    try:
        while True:
            completion = backend.complete(prompt.system, turns)
            usage = usage.add(completion.usage)
            if completion.truncated:
                if truncation_retried:
                    raise ProposerError(
                        "the reply was cut off at the output token limit "
                        f"({completion.finish_reason}) twice, the second time when asked for "
                        "short edit blocks"
                    )
                truncation_retried = True
                turns = [Turn("user", prompt.user + "\n\n" + prompts.TRUNCATED_AGAIN)]
                continue
            try:
                return parse(completion.text), usage
            except NoCodeError as exc:
                if no_code_left == 0:
                    raise ProposerError(
                        f"no code after {NO_CODE_RETRIES + 1} requests: {exc}"
                        + _finish_note(completion)
                    ) from None
                no_code_left -= 1
                turns += [Turn("assistant", completion.text), Turn("user", no_code_again)]
    except ProposerError as exc:
        exc.usage = usage.add(spent_by(exc))
        raise


def _finish_note(completion: Completion) -> str:
    reason = completion.finish_reason
    return f" (last finish reason: {reason})" if reason else ""


def spent_by(exc: BaseException) -> Usage:
    """Tokens a failed attempt spent before it raised (none when unknown)."""
    usage = getattr(exc, "usage", None)
    return usage if isinstance(usage, Usage) else Usage()


def reflect(
    backend: ChatBackend, request: ProposalRequest, plan: str, code: str
) -> tuple[str, str, Usage]:
    """The aide-ds fork's two-step self-reflection: critique (no code), then a minimal edit.

    A critique that finds nothing, or an edit reply that cannot be used, leaves the
    candidate as it was: reflection may only refine a candidate, never lose it. A failed
    request is still a failed request.
    """
    critique_prompt = prompts.critique_prompt(request, plan, code)
    critique = backend.complete(critique_prompt.system, [Turn("user", critique_prompt.user)])
    usage = critique.usage
    text = critique.text.strip()
    if critique.truncated or not _has_instructions(text):
        return plan, code, usage
    edit = prompts.edit_prompt(code, text, request.symbol)
    try:
        edited, spent = ask_for_code(backend, edit, code, request.target_path, request.symbol)
    except ProposerRequestError as exc:
        exc.usage = usage.add(spent_by(exc))
        raise
    except ProposerError as exc:
        spent = spent_by(exc)
        return f"{plan}\n\nReflection (not applied: {exc}):\n{text}", code, usage.add(spent)
    return f"{plan}\n\nReflection:\n{text}", edited.code, usage.add(spent)


def _has_instructions(critique: str) -> bool:
    if prompts.NO_CHANGES.lower().rstrip(".") in critique.lower():
        return False
    return bool(_NUMBERED.search(critique))


def request_failed(backend: ChatBackend, exc: BaseException) -> ProposerRequestError:
    """A ProposerRequestError that says which request failed, where it went and how, in one
    line; a ProposerRefused when the provider refused the key, the model or the URL."""
    if isinstance(exc, ValueError):  # the body did not parse (JSONDecodeError and kin)
        return malformed(backend, f"{type(exc).__name__}: {exc}")
    status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    request = f"{backend.provider} request for model {backend.model!r} at {backend.endpoint}"
    if isinstance(status, int) and status in REFUSALS:
        return ProposerRefused(
            f"{request} was refused: HTTP {status}, {REFUSALS[status]}: "
            f"{type(exc).__name__}: {detail}"
        )
    where = f"HTTP {status}: " if isinstance(status, int) else ""
    return ProposerRequestError(
        f"{request} failed after retries: {type(exc).__name__}: {where}{detail}"
    )


def malformed(backend: ChatBackend, what: str) -> ProposerRequestError:
    return ProposerRequestError(
        f"{backend.provider} at {backend.endpoint} returned a malformed response for model "
        f"{backend.model!r}: {what}"
    )
