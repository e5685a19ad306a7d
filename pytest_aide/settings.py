"""The run's settings, read once from options and ini values, checked, and then plain data."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

#: --aide-sandbox's values (evaluation/sandbox.py, not imported here: plugin load stays cheap).
SANDBOX_MODES = ("auto", "bwrap", "off")

#: --aide-warm's values.
WARM_MODES = ("auto", "off")

#: --aide-measure's values: timed metrics measured with nothing else running, or alongside.
MEASURE_MODES = ("isolated", "shared")

#: --aide-executor's values: slots on this machine, or tasks on a Ray cluster.
EXECUTORS = ("local", "ray")

#: --aide-guards's values: the tests that run the target's code (coverage), the tests in the
#: marked tests' files, or exactly the selected tests.
GUARD_MODES = ("auto", "files", "selected")

#: --aide-compare's values: replay the original's recorded answers against each candidate.
COMPARE_MODES = ("on", "off")

#: --aide-fail-on's values: when a finished run exits non-zero.
FAIL_ON_MODES = ("never", "error", "no-improvement")

#: The fewest interleaved rounds with which the sign test can reach alpha = 0.01.
MIN_CONFIRM_ROUNDS = 7


@dataclass
class AideSettings:
    """The checked settings, grouped by who reads them."""

    # the run and its files (session.py, run.py)
    steps: int = 0
    resume: str | None = None
    log_dir: Path = Path(".aide")
    preserve_source: bool = False
    budget: float | None = None
    price: tuple[float, float] | None = None
    fail_on: str = "error"
    # the proposer (proposers/select.py)
    model: str | None = None
    base_url: str | None = None
    instructions: str = ""
    reflect: bool = False
    tune_children: int = 6
    # the search policy and the confirmation (run.py, search/)
    drafts: int = 1
    debug_prob: float = 0.5
    max_debug_depth: int = 1
    seed: int = 0
    confirm_rounds: int = 20
    # the judge (session.py, run.py, search/): which tests guard, and answer replay
    guards: str = "auto"
    compare: str = "on"
    rtol: float | None = None
    atol: float | None = None
    # one evaluation (evaluation/, the sandbox hook)
    timeout: float = 600.0
    sandbox: str = "auto"
    network: bool = False
    warm: str = "auto"
    env_drop: list[str] = field(default_factory=list)
    env_keep: list[str] = field(default_factory=list)
    # where evaluations run (executors/)
    workers: int | None = 1  # None: "auto", resolved against the machine's slots
    gpus_per_worker: int = 0
    measure: str = "isolated"
    executor: str = "local"
    ray_address: str | None = None
    ray_shared_fs: bool = False
    ray_wait: float = 1800.0

    @property
    def parallel(self) -> bool:
        """More than one evaluation at once, or slots or an executor other than one local
        worker: the executor places evaluations (executors/choose.py), and the header says
        where."""
        return self.workers != 1 or self.gpus_per_worker > 0 or self.executor != "local"

    @property
    def optimizing(self) -> bool:
        return self.steps > 0


class Kind(Enum):
    """How an option's raw text is read (and how it is declared: a flag for BOOL)."""

    INT = "int"
    FLOAT = "float"
    STR = "str"
    BOOL = "bool"


@dataclass
class Reading:
    """What an option's check may use: the rootdir, and the settings checked before it
    (the table's order), by field name."""

    rootdir: Path
    done: dict[str, Any] = field(default_factory=dict)


#: An option's check: the converted value (None when unset) and the reading so far in, the
#: setting out; a bad value raises pytest.UsageError.
Check = Callable[[Any, Reading], Any]


def _as_is(value: Any, reading: Reading) -> Any:
    return value


@dataclass(frozen=True)
class Option:
    """One option: ``--aide-<name>`` and ini ``aide_<name>``, setting ``AideSettings.<field>``."""

    name: str
    kind: Kind
    help: str
    default: str | None = None  # as it would be written; None: unset
    check: Check = _as_is

    @property
    def dest(self) -> str:
        return "aide_" + self.name.replace("-", "_")

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")


# -- the checks ------------------------------------------------------------------------------


def _steps(value: int | None, reading: Reading) -> int:
    steps = int(value or 0)
    if steps < 0:
        raise pytest.UsageError(f"--aide-steps must be 0 or more, not {steps}")
    return steps


def _resume(value: str | None, reading: Reading) -> str | None:
    if value and reading.done["steps"] == 0:  # else a plain test run would ignore it, silently
        raise pytest.UsageError(
            f"--aide-resume {value} needs --aide-steps N, the run's total with the steps "
            "already done included (e.g. --aide-steps 20 continues a run to 20 steps)"
        )
    return value


def _log_dir(value: str | None, reading: Reading) -> Path:
    log_dir = Path(str(value or ".aide")).expanduser()
    return log_dir if log_dir.is_absolute() else reading.rootdir / log_dir


def _instructions(text: str | None, reading: Reading) -> str:
    """Text, or the contents of the file it names (relative to the rootdir)."""
    if not text:
        return ""
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = reading.rootdir / candidate
    try:
        if len(text) < 4096 and candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    except OSError:
        pass
    return text


def _flag(value: bool | None, reading: Reading) -> bool:
    return bool(value)


def in_ci() -> bool:
    """``CI`` is set (GitHub Actions, GitLab CI and most others set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _preserve_source(value: bool | None, reading: Reading) -> bool:
    """Asked for (the flag, or the ini value true or false), else on in CI: a pre-merge job
    reports the change and leaves the checkout as it was."""
    return in_ci() if value is None else value


def _budget(value: float | None, reading: Reading) -> float | None:
    if value is not None and value <= 0:
        raise pytest.UsageError(f"--aide-budget must be a positive amount of USD, not {value}")
    return value


def _drafts(value: int | None, reading: Reading) -> int:
    """Default: AIDE's share of drafts, scaled to the steps."""
    drafts = max(1, math.ceil(0.15 * reading.done["steps"])) if value is None else value
    if drafts < 1:
        raise pytest.UsageError(f"--aide-drafts must be at least 1, not {drafts}")
    return drafts


def _tune_children(value: int, reading: Reading) -> int:
    if value < 1:
        raise pytest.UsageError(f"--aide-tune-children must be at least 1, not {value}: the "
                                "tuner's evaluations of each LLM candidate that becomes the "
                                "best (with --aide-model PROVIDER:MODEL+tune)")
    return value


def _debug_prob(value: float, reading: Reading) -> float:
    if not 0.0 <= value <= 1.0:
        raise pytest.UsageError(f"--aide-debug-prob must be between 0 and 1, not {value}")
    return value


def _max_debug_depth(value: int | None, reading: Reading) -> int:
    return max(1, math.ceil(0.1 * reading.done["steps"])) if value is None else value


def _confirm_rounds(value: int, reading: Reading) -> int:
    if value < MIN_CONFIRM_ROUNDS:
        raise pytest.UsageError(
            f"--aide-confirm-rounds must be at least {MIN_CONFIRM_ROUNDS}, not {value}: a "
            "speedup is confirmed by a sign test over the rounds, which cannot reach 1% "
            "significance with fewer"
        )
    return value


def _timeout(value: float, reading: Reading) -> float:
    if value <= 0:
        raise pytest.UsageError(f"--aide-timeout must be positive seconds, not {value}")
    return value


def _one_of(name: str, allowed: tuple[str, ...]) -> Check:
    def check(raw: str, reading: Reading) -> str:
        value = str(raw).strip().lower()
        if value not in allowed:
            raise pytest.UsageError(
                f"--aide-{name} must be one of {', '.join(allowed)}, not {raw!r}"
            )
        return value

    return check


def _tolerance(name: str, value: float | None) -> float | None:
    if value is not None and not value >= 0:
        raise pytest.UsageError(f"--aide-{name} must be a number 0 or more, not {value}")
    return value


def _price(raw: str | None, reading: Reading) -> tuple[float, float] | None:
    """``--aide-price 0.5,2`` -> (0.5, 2.0): USD per million tokens in, out."""
    if raw is None:
        return None
    parts = str(raw).replace(" ", "").split(",")
    try:
        price = tuple(float(part) for part in parts)
    except ValueError:
        price = ()
    if len(price) != 2 or not all(math.isfinite(p) and p >= 0 for p in price):
        raise pytest.UsageError(
            f"--aide-price must be IN,OUT: two amounts of USD per million tokens (input, "
            f"output), e.g. --aide-price 0.5,2; not {raw!r}"
        )
    return price[0], price[1]


def _names(raw: str | None, reading: Reading) -> list[str]:
    """``A, B`` or ``A B`` (or one per line in an ini file) -> ``["A", "B"]``."""
    return [n for n in str(raw or "").replace(",", " ").split() if n]


def _workers(raw: str, reading: Reading) -> int | None:
    """``--aide-workers``: a positive count, or ``auto`` (None)."""
    text = str(raw).strip().lower()
    if text == "auto":
        return None
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if workers < 1:
        raise pytest.UsageError(
            f"--aide-workers must be a number of evaluations at once (1 or more) or 'auto', "
            f"not {raw!r}"
        )
    return workers


def _gpus_per_worker(value: int, reading: Reading) -> int:
    if value < 0:
        raise pytest.UsageError(f"--aide-gpus-per-worker must be 0 or more GPUs, not {value}")
    return value


def _ray_only(value: Any, reading: Reading) -> Any:
    if value and reading.done["executor"] != "ray":
        raise pytest.UsageError(
            "--aide-ray-address, --aide-ray-shared-fs and --aide-ray-wait only apply to the "
            "Ray executor: add --aide-executor ray"
        )
    return value


def _ray_wait(value: float | None, reading: Reading) -> float:
    if value is None:
        return AideSettings.ray_wait
    if value <= 0:
        raise pytest.UsageError(f"--aide-ray-wait must be positive seconds, not {value}")
    return float(_ray_only(value, reading))


# -- the table -------------------------------------------------------------------------------

#: Every option, in the order ``--help`` lists them and in which they are checked (a check
#: may read the settings above it: the steps, the executor).
OPTIONS: tuple[Option, ...] = (
    Option("steps", Kind.INT, "proposals per target; 0 or absent: a normal test run. With "
           "--aide-resume: the run's total, steps already done included", check=_steps),
    Option("model", Kind.STR, "proposer: 'tune' (built-in, offline), 'openai:MODEL', "
           "'gemini:MODEL', 'anthropic:MODEL'; a bare name picks the provider by prefix. "
           "Default: $AIDE_MODEL, else the first provider whose key is set, else 'tune'"),
    Option("base-url", Kind.STR,
           "endpoint override (OpenAI-compatible servers: vLLM, Ollama, ...)"),
    Option("instructions", Kind.STR, "extra guidance for the proposer: text, or a path to a "
           "file", check=_instructions),
    Option("log-dir", Kind.STR, "where runs are kept (default: .aide in the rootdir)",
           check=_log_dir),
    Option("preserve-source", Kind.BOOL, "never write the target file; keep the best in the "
           "run dir (default: on when CI is set, unless the ini file sets it to false)",
           check=_preserve_source),
    Option("timeout", Kind.FLOAT, "seconds allowed for one evaluation (default 600)", "600",
           check=_timeout),
    Option("drafts", Kind.INT, "initial drafts (default max(1, ceil(0.15 x steps)))",
           check=_drafts),
    Option("debug-prob", Kind.FLOAT, "probability of debugging a buggy leaf (default 0.5)",
           "0.5", check=_debug_prob),
    Option("max-debug-depth", Kind.INT, "debug chain limit (default max(1, ceil(0.1 x "
           "steps)))", check=_max_debug_depth),
    Option("resume", Kind.STR, "continue a run from its journal: RUN_ID or 'latest'. "
           "--aide-steps N is then the run's total: after 4 steps, --aide-steps 7 adds 3; a "
           "total equal to the steps done only finishes an interrupted run; a smaller one is "
           "an error", check=_resume),
    Option("tune-children", Kind.INT, "with --aide-model PROVIDER:MODEL+tune: the tuner's "
           "evaluations of the numeric knobs of each LLM candidate that becomes the best "
           "(default 6)", "6", check=_tune_children),
    Option("reflect", Kind.BOOL, "self-reflection: critique, then a minimal edit, before "
           "running", check=_flag),
    Option("fail-on", Kind.STR, "when a finished run exits non-zero (1): 'error' (no "
           "proposal could be made at all), 'no-improvement' (that, or nothing was confirmed "
           "better than the original) or 'never' (default error)", "error",
           check=_one_of("fail-on", FAIL_ON_MODES)),
    Option("budget", Kind.FLOAT, "stop when the estimated LLM cost reaches this many USD",
           check=_budget),
    Option("price", Kind.STR, "USD per million input and output tokens, 'IN,OUT', for a "
           "model missing from the price table (the cost estimate and the budget use it)",
           check=_price),
    Option("seed", Kind.INT, "random seed of the search policy and the tuner (default 0)",
           "0"),
    Option("sandbox", Kind.STR, "run each evaluation in an OS sandbox: 'auto' (bubblewrap "
           "when it works here, else say so and go on without), 'bwrap' (required), 'off' "
           "(default auto)", "auto", check=_one_of("sandbox", SANDBOX_MODES)),
    Option("network", Kind.BOOL, "let candidate code use the network inside the sandbox",
           check=_flag),
    Option("warm", Kind.STR, "start each sandboxed evaluation from a warm interpreter that "
           "has pytest and the tests' libraries loaded (a fork per evaluation): 'auto' (when "
           "the sandbox is on and forking is safe) or 'off' (default auto)", "auto",
           check=_one_of("warm", WARM_MODES)),
    Option("env-drop", Kind.STR, "comma-separated variables to remove from the evaluations' "
           "environment, besides those whose names contain KEY, TOKEN, SECRET, PASSWORD, "
           "CREDENTIAL or AUTH", check=_names),
    Option("env-keep", Kind.STR, "comma-separated variables to pass to the evaluations "
           "although their names look secret (a test needs them)", check=_names),
    Option("guards", Kind.STR, "which tests guard a candidate: 'auto' (the tests of the "
           "suite that execute the target's code on the original, by coverage), 'files' "
           "(the tests in the marked tests' files) or 'selected' (exactly the selected tests) "
           "(default auto)", "auto", check=_one_of("guards", GUARD_MODES)),
    Option("compare", Kind.STR, "replay the original's recorded answers against each "
           "candidate: 'on' or 'off' (default on)", "on",
           check=_one_of("compare", COMPARE_MODES)),
    Option("rtol", Kind.FLOAT, "relative tolerance for floats and arrays when a candidate's "
           "answers are compared with the original's (default 1e-6; a marker's rtol= wins)",
           check=lambda value, reading: _tolerance("rtol", value)),
    Option("atol", Kind.FLOAT, "absolute tolerance for that comparison (default 1e-9; a "
           "marker's atol= wins)", check=lambda value, reading: _tolerance("atol", value)),
    Option("confirm-rounds", Kind.INT, "most interleaved confirmation rounds of the best; a "
           "clear win stops after 8 (default 20)", "20", check=_confirm_rounds),
    Option("workers", Kind.STR, "evaluations run at once, each in its own slot of CPU cores "
           "(and GPUs): N, or 'auto' (as many slots as the machine offers); proposals are "
           "requested while they run (default 1)", "1", check=_workers),
    Option("gpus-per-worker", Kind.INT, "GPUs each slot gets (CUDA_VISIBLE_DEVICES); slots "
           "never share a GPU (default 0)", "0", check=_gpus_per_worker),
    Option("measure", Kind.STR, "timed metrics measured with nothing else running "
           "('isolated': the guard tests of other candidates wait) or alongside the other "
           "evaluations ('shared', faster and noisier) (default isolated)", "isolated",
           check=_one_of("measure", MEASURE_MODES)),
    Option("executor", Kind.STR, "where evaluations run: 'local' (slots on this machine) or "
           "'ray' (tasks on a Ray cluster; pip install 'pytest-aide[ray]') (default local)",
           "local", check=_one_of("executor", EXECUTORS)),
    Option("ray-address", Kind.STR, "the Ray cluster to use with --aide-executor ray "
           "(default: $RAY_ADDRESS, else a local cluster started for the run)",
           check=_ray_only),
    Option("ray-shared-fs", Kind.BOOL, "with --aide-executor ray: the project lies at the "
           "same path on every node (a shared filesystem), so it is not uploaded",
           check=lambda value, reading: _flag(_ray_only(value, reading), reading)),
    Option("ray-wait", Kind.FLOAT, "with --aide-executor ray: seconds an evaluation may wait "
           "for a node with the CPUs and GPUs it asks for before the run stops, saying so; "
           "its --aide-timeout counts from when it starts (default 1800)", check=_ray_wait),
)


# -- reading ---------------------------------------------------------------------------------


def read_settings(config: pytest.Config) -> AideSettings:
    """Options and ini values as checked settings; a bad value is a usage error. Every
    value is converted first, then checked in the table's order."""
    values = {option.field: _convert(config, option) for option in OPTIONS}
    reading = Reading(Path(str(config.rootpath)))
    for option in OPTIONS:
        reading.done[option.field] = option.check(values[option.field], reading)
    return AideSettings(**reading.done)


def _raw(config: pytest.Config, dest: str) -> object:
    """The command line's value, else the ini file's (a flag left off defers to the ini)."""
    value = config.getoption(dest, None)
    if value is None or value is False:
        ini = config.getini(dest)
        if ini not in (None, "", [], False):
            return ini
    return value


def _convert(config: pytest.Config, option: Option) -> object:
    raw = _raw(config, option.dest)
    if raw is None or raw == "":
        raw = option.default
    if raw is None:
        return None
    if option.kind is Kind.BOOL:
        return _to_bool(raw, option)
    if option.kind in (Kind.INT, Kind.FLOAT):
        return _to_number(raw, option)
    return str(raw)


def _to_bool(raw: object, option: Option) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise pytest.UsageError(f"{option.dest} must be true or false, not {raw!r}")


def _to_number(raw: object, option: Option) -> int | float:
    try:
        return int(str(raw)) if option.kind is Kind.INT else float(str(raw))
    except ValueError:
        raise pytest.UsageError(
            f"--aide-{option.name} needs a number ({option.kind.value}), not {raw!r}"
        ) from None


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("aide", "pytest-aide: optimize code against the test suite")
    for option in OPTIONS:
        flag = f"--aide-{option.name}"
        if option.kind is Kind.BOOL:
            # None when left off, so that a check can tell "not asked" from "asked not to"
            # (an ini value of false): --aide-preserve-source's default depends on CI
            group.addoption(flag, action="store_true", default=None, dest=option.dest,
                            help=option.help)
        else:
            group.addoption(flag, action="store", default=None, dest=option.dest,
                            metavar=option.name.upper().replace("-", "_"), help=option.help)
        parser.addini(option.dest, help=option.help, default=None)
