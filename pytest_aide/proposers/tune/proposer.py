"""The built-in offline proposer: a TPE search over the target module's literals.

Used when no LLM is configured. It never writes new code; each candidate is the original
module with some numbers changed (see :mod:`pytest_aide.proposers.tune.tunables` for what is
tunable and the ``# aide:`` hints). Optuna's TPE sampler, driven through its ask-and-tell interface,
picks the next configuration from the results ``observe`` reports, so a search of a few
dozen evaluations concentrates on the promising region instead of sampling blindly.

The search operators (draft, improve, debug) all mean "the next configuration" here: the
tuner has one model of the whole space, whatever node the search starts from.

It tunes speed, not output: a literal can be a knob of behaviour (a padding width, a format
flag) as well as of speed (a block size). So with several tunables it first moves each one
alone, once; one whose move alone fails the tests (the guards) is frozen at its original
value and left out of the search from then on.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_aide.journal import Node, Status
from pytest_aide.proposers.base import (
    Proposal,
    ProposalRequest,
    ProposerConfigError,
    SearchExhausted,
)
from pytest_aide.proposers.tune.tunables import (
    BOOL,
    CHOICE,
    FLOAT,
    Tunable,
    apply_values,
    find_tunables,
)
from pytest_aide.proposers.tune.tunables import format_value as _format
from pytest_aide.sources import Sources

if TYPE_CHECKING:
    import optuna

NO_TUNABLES = (
    "the built-in tuner (--aide-model tune) found nothing to tune in {target}: it only changes "
    "numeric literals, namely UPPER_CASE module constants (BLOCK_SIZE = 1024) and numeric "
    "keyword arguments (n_estimators=100). Add such constants, or mark a literal with a hint "
    "comment such as '# aide: 16..1024 pow2', or let an LLM rewrite the code with "
    "--aide-model openai:MODEL (or gemini:MODEL, anthropic:MODEL)."
)

MAX_ASKS = 3  # TPE proposals tried before falling back to an unseen neighbour
NEIGHBOUR_TRIES = 300
FLOAT_DIGITS = 4  # significant digits of a proposed float

_PENDING = "pending"  # proposed, result not yet observed
_FAILED = "failed"  # observed, not good

Config = tuple[Any, ...]


class TuneProposer:
    """Proposes the next configuration of the module's tunables with Optuna's TPE."""

    name = "tune"

    def __init__(self, original_code: str, seed: int = 0, target: str = "the target module",
                 relpaths: Sequence[str] = ()):
        #: With several target files (``target=[...]``): their relpaths; the tunables of
        #: each are searched together, named ``path:NAME``.
        self.relpaths = list(relpaths) if len(relpaths) > 1 else []
        try:
            tunables = find_all(original_code, self.relpaths)
        except (SyntaxError, ValueError) as error:
            raise ProposerConfigError(f"the tuner cannot read {target}: {error}") from error
        if not tunables:
            raise ProposerConfigError(NO_TUNABLES.format(target=target))
        self.original_code = original_code
        self.tunables: list[Tunable] = tunables
        self.seed = seed
        self._rng = random.Random(seed)
        self._original = {t.name: t.value for t in tunables}
        # every configuration proposed or observed -> objective, _PENDING or _FAILED
        self._results: dict[Config, Any] = {self._key(self._original): _PENDING}
        self._study: optuna.Study | None = None
        self._distributions: dict[str, Any] = {}
        #: Tunables not yet moved alone (only worth it with several), and those whose move
        #: alone failed the tests: knobs of behaviour, kept at their original values.
        self._unscreened = [t.name for t in tunables] if len(tunables) > 1 else []
        self.frozen: set[str] = set()

    def space_text(self) -> str:
        """What the tuner searches, for the run's header."""
        names = ", ".join(t.name for t in self.tunables[:8])
        more = f" and {len(self.tunables) - 8} more" if len(self.tunables) > 8 else ""
        alone = ("; each is first moved alone, and one whose move fails the tests is left as "
                 "it is" if len(self.tunables) > 1 else "")
        return f"The tuner searches {len(self.tunables)} literal(s): {names}{more}{alone}."

    # --- the Proposer protocol -----------------------------------------------------------

    def propose(self, request: ProposalRequest) -> Proposal:
        """The next configuration, as the original module with those literals written in."""
        study = self._get_study()
        alone = self._one_moved()
        if alone is not None:
            self._enqueue(study, alone)
            trial = study.ask(self._searched())
            values = alone
        else:
            trial, values = self._ask(study)
        self._results.setdefault(self._key(values), _PENDING)
        changed = {n: v for n, v in values.items() if not _same(v, self._original[n])}
        code = apply_all(self.original_code, self.tunables, changed, self.relpaths)
        # the plan reads as a change from the node it hangs under, as an LLM's plan does
        parent = self._values_in(request.parent.code) if request.parent.code else None
        return Proposal(plan=self._describe(values, parent or self._original), code=code,
                        data=trial)

    def _one_moved(self) -> dict[str, Any] | None:
        """The original with the next unscreened tunable moved alone (None when all were)."""
        by_name = {t.name: t for t in self.tunables}
        while self._unscreened:
            tunable = by_name[self._unscreened.pop(0)]
            for _ in range(NEIGHBOUR_TRIES // 10):
                values = dict(self._original)
                values[tunable.name] = _step(tunable, tunable.value, 2, self._rng)
                if self._key(values) not in self._results:
                    return values
        return None

    def _ask(self, study: optuna.Study) -> tuple[Any, dict[str, Any]]:
        """TPE's next configuration (the frozen tunables at their original values), else an
        unseen neighbour of the best; SearchExhausted when there is none."""
        for _ in range(MAX_ASKS):
            trial = study.ask(self._searched())
            values = self._decode(trial.params)
            if self._key(values) not in self._results:
                return trial, values
            study.tell(trial, state=_trial_state().FAIL)  # a repeat: teaches TPE nothing
        values = self._unseen_neighbour()
        if values is None:
            study.tell(trial, state=_trial_state().FAIL, skip_if_finished=True)
            frozen = (f" ({len(self.frozen)} left as they are: moving "
                      f"{', '.join(sorted(self.frozen))} alone failed the tests)"
                      if self.frozen else "")
            raise SearchExhausted(
                f"the tuner has tried every configuration of its {len(self.tunables)} "
                f"tunable(s){frozen}; widen the ranges with '# aide:' hints or use an LLM"
            )
        self._enqueue(study, values)
        return study.ask(self._searched()), values

    def _enqueue(self, study: optuna.Study, values: dict[str, Any]) -> None:
        """The next ``ask`` gives ``values`` (its searched tunables'; the frozen stay)."""
        params = {n: v for n, v in self._encode(values).items() if n not in self.frozen}
        study.enqueue_trial(params, skip_if_exists=False)

    def _searched(self) -> dict[str, Any]:
        """The distributions TPE samples: every tunable's but the frozen ones'."""
        self._get_study()
        return {n: d for n, d in self._distributions.items() if n not in self.frozen}

    def observe(self, node: Node, proposal: Proposal | None) -> None:
        """Record how a configuration did: its objective (higher is better) or a failure.

        With ``proposal=None`` (the baseline, or a node replayed on resume) the
        configuration is read back from ``node.code`` and added as a finished trial.
        """
        objective = node.objective if node.is_good else None
        if objective is not None and not math.isfinite(objective):
            objective = None
        study = self._get_study()
        trial = getattr(proposal, "data", None)
        if proposal is not None and trial is not None:
            values = self._decode(trial.params)
            self._freeze_if_behaviour(node, values)
            self._results[self._key(values)] = _outcome(objective)
            if objective is None:
                study.tell(trial, state=_trial_state().PRUNED, skip_if_finished=True)
            else:
                study.tell(trial, objective, skip_if_finished=True)
            return
        values = self._values_in(node.code or self.original_code)
        if values is None:
            return
        self._results[self._key(values)] = _outcome(objective)
        if all(t.contains(values[t.name]) for t in self.tunables):
            self._add_finished_trial(values, objective)

    def _freeze_if_behaviour(self, node: Node, values: dict[str, Any]) -> None:
        """A configuration that moved one tunable alone and failed the tests (not tampering,
        not a crash): that tunable changes behaviour, not speed; it is frozen."""
        moved = [n for n, v in values.items() if not _same(v, self._original[n])]
        failed_tests = any(outcome in ("failed", "error") for outcome in node.outcomes.values())
        if (len(moved) == 1 and node.status == Status.BUGGY and failed_tests
                and len(self.frozen) < len(self.tunables) - 1):
            self.frozen.add(moved[0])

    # --- optuna --------------------------------------------------------------------------

    @property
    def study(self) -> optuna.Study:
        """The optuna study behind the search (created on first use)."""
        return self._get_study()

    def _get_study(self) -> optuna.Study:
        if self._study is None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            # random start-up trials: fewer than optuna's 10 for small spaces, since budgets
            # are a few dozen evaluations and the baseline is already one data point
            startup = min(10, 2 * len(self.tunables) + 2)
            sampler = optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=startup)
            self._study = optuna.create_study(direction="maximize", sampler=sampler)
            self._distributions = {t.name: _distribution(t) for t in self.tunables}
        return self._study

    def _add_finished_trial(self, values: dict[str, Any], objective: float | None) -> None:
        import optuna

        state = optuna.trial.TrialState
        trial = optuna.trial.create_trial(
            params=self._encode(values),
            distributions=self._distributions,
            value=objective,
            state=state.COMPLETE if objective is not None else state.PRUNED,
        )
        self._get_study().add_trial(trial)

    def _encode(self, values: dict[str, Any]) -> dict[str, Any]:
        """Configuration -> optuna params (powers of two are searched by exponent)."""
        by_name = {t.name: t for t in self.tunables}
        return {n: int(v).bit_length() - 1 if by_name[n].pow2 else v for n, v in values.items()}

    def _decode(self, params: dict[str, Any]) -> dict[str, Any]:
        values = {}
        for tunable in self.tunables:
            if tunable.name not in params:  # frozen: not searched
                values[tunable.name] = tunable.value
                continue
            raw = params[tunable.name]
            if tunable.pow2:
                raw = 2 ** int(raw)
            elif tunable.kind == FLOAT:
                raw = _round_float(float(raw), tunable)
            values[tunable.name] = raw
        return values

    # --- configurations ------------------------------------------------------------------

    def _key(self, values: dict[str, Any]) -> Config:
        return tuple((type(values[t.name]).__name__, values[t.name]) for t in self.tunables)

    def _values_in(self, code: str) -> dict[str, Any] | None:
        """The tunables' values as written in ``code`` (a candidate of the original)."""
        try:
            found = {t.name: t.value for t in find_all(code, self.relpaths)}
        except (SyntaxError, ValueError):
            return None
        return {t.name: found.get(t.name, t.value) for t in self.tunables}

    def _best_values(self) -> dict[str, Any]:
        best_key, best = None, -math.inf
        for key, result in self._results.items():
            if isinstance(result, float) and result > best:
                best_key, best = key, result
        if best_key is None:
            return dict(self._original)
        return {t.name: value for t, (_, value) in zip(self.tunables, best_key, strict=True)}

    def _unseen_neighbour(self) -> dict[str, Any] | None:
        """A random configuration near the best one that has not been tried yet."""
        start = self._best_values()
        for attempt in range(NEIGHBOUR_TRIES):
            values = dict(start)
            reach = 1 + attempt // 50  # wander further as near points run out
            free = [t for t in self.tunables if t.name not in self.frozen]
            for tunable in self._rng.sample(free, self._rng.randint(1, min(2, len(free)))):
                values[tunable.name] = _step(tunable, values[tunable.name], reach, self._rng)
            if self._key(values) not in self._results:
                return values
        for _ in range(NEIGHBOUR_TRIES):  # anywhere in the space
            values = {t.name: t.value if t.name in self.frozen else sample_uniform(t, self._rng)
                      for t in self.tunables}
            if self._key(values) not in self._results:
                return values
        return None

    def _describe(self, values: dict[str, Any], base: dict[str, Any]) -> str:
        """``values`` as a change from ``base`` (the parent node's values)."""
        changed = {n: v for n, v in values.items() if not _same(v, base[n])}
        if not changed:
            return "the original values" if base == self._original else "the parent's values"
        by_name = {t.name: t for t in self.tunables}
        return ", ".join(
            f"{n} {_format(base[n], by_name[n].kind)} -> {_format(v, by_name[n].kind)}"
            for n, v in changed.items()
        )


# --- search spaces ---------------------------------------------------------------------


def _distribution(tunable: Tunable) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if tunable.kind in (BOOL, CHOICE):
        return CategoricalDistribution(list(tunable.choices))
    assert tunable.low is not None and tunable.high is not None
    if tunable.pow2:
        return IntDistribution(
            int(tunable.low).bit_length() - 1, int(tunable.high).bit_length() - 1
        )
    if tunable.kind == FLOAT:
        return FloatDistribution(float(tunable.low), float(tunable.high), log=tunable.log)
    return IntDistribution(int(tunable.low), int(tunable.high), log=tunable.log)


def sample_uniform(tunable: Tunable, rng: random.Random) -> Any:
    """A point of ``tunable``'s space drawn uniformly (on its own scale: log, pow2, linear)."""
    if tunable.kind in (BOOL, CHOICE):
        return rng.choice(tunable.choices)
    low, high = tunable.low, tunable.high
    assert low is not None and high is not None
    if tunable.pow2:
        return 2 ** rng.randint(int(low).bit_length() - 1, int(high).bit_length() - 1)
    if tunable.log:
        drawn = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        drawn = rng.uniform(low, high)
    if tunable.kind == FLOAT:
        return _round_float(drawn, tunable)
    return min(int(high), max(int(low), round(drawn)))


def _step(tunable: Tunable, value: Any, reach: int, rng: random.Random) -> Any:
    """A value of ``tunable`` a few steps from ``value``, inside its space."""
    if tunable.kind in (BOOL, CHOICE):
        others = [c for c in tunable.choices if not _same(c, value)]
        return rng.choice(others) if others else value
    low, high = tunable.low, tunable.high
    assert low is not None and high is not None
    steps = rng.choice([-1, 1]) * rng.randint(1, reach)
    if tunable.pow2:
        moved = 2 ** (int(value).bit_length() - 1 + steps)
    elif tunable.log and value > 0:
        moved = value * 1.25**steps
    else:
        moved = value + steps * (high - low) / 16
    if tunable.kind == FLOAT:
        moved = _round_float(moved, tunable)
    else:
        moved = round(moved)
        if moved == value:
            moved = value + (1 if steps > 0 else -1)
    return min(high, max(low, moved))


def _round_float(value: float, tunable: Tunable) -> float:
    """``value`` to 4 significant digits: a readable literal, finer than any test resolves."""
    rounded = float(f"{value:.{FLOAT_DIGITS}g}")
    return min(float(tunable.high), max(float(tunable.low), rounded))  # type: ignore[arg-type]


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _outcome(objective: float | None) -> Any:
    return _FAILED if objective is None else float(objective)


def _trial_state() -> Any:
    from optuna.trial import TrialState

    return TrialState


def find_all(code: str, relpaths: Sequence[str]) -> list[Tunable]:
    """``find_tunables`` of the one target's code, or (``relpaths``: several target files)
    of each file's, named ``path:NAME`` so that two files' ``BLOCK`` stay apart."""
    if not relpaths:
        return find_tunables(code)
    return [dataclasses.replace(t, name=f"{path}:{t.name}")
            for path, text in Sources.decode(code, relpaths) for t in find_tunables(text)]


def apply_all(code: str, tunables: list[Tunable], values: dict[str, Any],
              relpaths: Sequence[str]) -> str:
    """``apply_values`` on the one target's code, or on each file of several (the
    tunables ``find_all`` named ``path:NAME``)."""
    if not relpaths:
        return apply_values(code, tunables, values)
    sources = Sources.decode(code, relpaths)
    for path, text in sources:
        prefix = f"{path}:"
        mine = {n[len(prefix):]: v for n, v in values.items() if n.startswith(prefix)}
        if mine:
            local = [dataclasses.replace(t, name=t.name[len(prefix):]) for t in tunables
                     if t.name.startswith(prefix)]
            sources = sources.replace(path, apply_values(text, local, mine))
    return sources.encode()
