"""The run's settings, read once from options and ini values, checked, and then plain data."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: --aide-sandbox's values (evaluation/sandbox.py, not imported here: plugin load stays cheap).
SANDBOX_MODES = ("auto", "bwrap", "off")

#: --aide-warm's values.
WARM_MODES = ("auto", "off")

#: --aide-measure's values: timed metrics measured with nothing else running, or alongside.
MEASURE_MODES = ("isolated", "shared")

#: --aide-executor's values: slots on this machine, or tasks on a Ray cluster.
EXECUTORS = ("local", "ray")

#: The fewest interleaved rounds with which the sign test can reach alpha = 0.01.
MIN_CONFIRM_ROUNDS = 7

#: (name, type, default, help). Each is ``--aide-<name>`` and ini ``aide_<name>``.
OPTIONS: list[tuple[str, str, str | None, str]] = [
    ("steps", "int", None, "proposals per target; 0 or absent: a normal test run. With "
     "--aide-resume: the run's total, steps already done included"),
    (
        "model",
        "str",
        None,
        "proposer: 'tune' (built-in, offline), 'openai:MODEL', 'gemini:MODEL', "
        "'anthropic:MODEL'; a bare name picks the provider by prefix. Default: $AIDE_MODEL, "
        "else the first provider whose key is set, else 'tune'",
    ),
    ("base-url", "str", None, "endpoint override (OpenAI-compatible servers: vLLM, Ollama, ...)"),
    ("instructions", "str", None, "extra guidance for the proposer: text, or a path to a file"),
    ("log-dir", "str", None, "where runs are kept (default: .aide in the rootdir)"),
    ("preserve-source", "bool", None, "never write the target file; keep the best in the run dir"),
    ("timeout", "float", "600", "seconds allowed for one evaluation (default 600)"),
    ("drafts", "int", None, "initial drafts (default max(1, ceil(0.15 x steps)))"),
    ("debug-prob", "float", "0.5", "probability of debugging a buggy leaf (default 0.5)"),
    ("max-debug-depth", "int", None, "debug chain limit (default max(1, ceil(0.1 x steps)))"),
    ("resume", "str", None, "continue a run from its journal: RUN_ID or 'latest'. "
     "--aide-steps N is then the run's total: after 4 steps, --aide-steps 7 adds 3; a total "
     "equal to the steps done only finishes an interrupted run; a smaller one is an error"),
    ("reflect", "bool", None, "self-reflection: critique, then a minimal edit, before running"),
    ("budget", "float", None, "stop when the estimated LLM cost reaches this many USD"),
    ("seed", "int", "0", "random seed of the search policy and the tuner (default 0)"),
    ("sandbox", "str", "auto", "run each evaluation in an OS sandbox: 'auto' (bubblewrap when it "
     "works here, else say so and go on without), 'bwrap' (required), 'off' (default auto)"),
    ("network", "bool", None, "let candidate code use the network inside the sandbox"),
    ("warm", "str", "auto", "start each sandboxed evaluation from a warm interpreter that has "
     "pytest and the tests' libraries loaded (a fork per evaluation): 'auto' (when the sandbox "
     "is on and forking is safe) or 'off' (default auto)"),
    ("env-drop", "str", None, "comma-separated variables to remove from the evaluations' "
     "environment, besides those whose names contain KEY, TOKEN, SECRET, PASSWORD, CREDENTIAL "
     "or AUTH"),
    ("env-keep", "str", None, "comma-separated variables to pass to the evaluations although "
     "their names look secret (a test needs them)"),
    ("confirm-rounds", "int", "20", "most interleaved confirmation rounds of the best; a clear "
     "win stops after 8 (default 20)"),
    ("workers", "str", "1", "evaluations run at once, each in its own slot of CPU cores (and "
     "GPUs): N, or 'auto' (as many slots as the machine offers); proposals are requested "
     "while they run (default 1)"),
    ("gpus-per-worker", "int", "0", "GPUs each slot gets (CUDA_VISIBLE_DEVICES); slots never "
     "share a GPU (default 0)"),
    ("measure", "str", "isolated", "timed metrics measured with nothing else running "
     "('isolated': the guard tests of other candidates wait) or alongside the other "
     "evaluations ('shared', faster and noisier) (default isolated)"),
    ("executor", "str", "local", "where evaluations run: 'local' (slots on this machine) or "
     "'ray' (tasks on a Ray cluster; pip install 'pytest-aide[ray]') (default local)"),
    ("ray-address", "str", None, "the Ray cluster to use with --aide-executor ray (default: "
     "$RAY_ADDRESS, else a local cluster started for the run)"),
    ("ray-shared-fs", "bool", None, "with --aide-executor ray: the project lies at the same "
     "path on every node (a shared filesystem), so it is not uploaded"),
]


@dataclass
class AideSettings:
    steps: int = 0
    model: str | None = None
    base_url: str | None = None
    instructions: str = ""
    log_dir: Path = Path(".aide")
    preserve_source: bool = False
    timeout: float = 600.0
    drafts: int = 1
    debug_prob: float = 0.5
    max_debug_depth: int = 1
    resume: str | None = None
    reflect: bool = False
    budget: float | None = None
    seed: int = 0
    sandbox: str = "auto"
    network: bool = False
    warm: str = "auto"
    env_drop: list[str] = field(default_factory=list)
    env_keep: list[str] = field(default_factory=list)
    confirm_rounds: int = 20
    workers: int | None = 1  # None: "auto", resolved against the machine's slots
    gpus_per_worker: int = 0
    measure: str = "isolated"
    executor: str = "local"
    ray_address: str | None = None
    ray_shared_fs: bool = False

    @property
    def parallel(self) -> bool:
        """More than one evaluation at once, or slots or executors that the serial path
        does not know: the scheduler of search/parallel.py runs the search."""
        return self.workers != 1 or self.gpus_per_worker > 0 or self.executor != "local"

    @property
    def optimizing(self) -> bool:
        return self.steps > 0


def _raw(config: pytest.Config, name: str) -> object:
    dest = "aide_" + name.replace("-", "_")
    value = config.getoption(dest, None)
    if value is None or value is False:
        ini = config.getini(dest)
        if ini not in (None, "", [], False):
            return ini
    return value


def _convert(config: pytest.Config, name: str, kind: str, default: str | None) -> object:
    raw = _raw(config, name)
    if raw is None or raw == "":
        raw = default
    if raw is None:
        return None
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise pytest.UsageError(f"aide_{name.replace('-', '_')} must be true or false, not {raw!r}")
    if kind in {"int", "float"}:
        try:
            value = int(str(raw)) if kind == "int" else float(str(raw))
        except ValueError:
            raise pytest.UsageError(
                f"--aide-{name} needs a number ({kind}), not {raw!r}"
            ) from None
        return value
    return str(raw)


def _read_instructions(text: str | None, rootdir: Path) -> str:
    if not text:
        return ""
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = rootdir / candidate
    try:
        if len(text) < 4096 and candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    except OSError:
        pass
    return text


def _names(raw: object) -> list[str]:
    """``A, B`` or ``A B`` (or one per line in an ini file) -> ``["A", "B"]``."""
    return [n for n in str(raw or "").replace(",", " ").split() if n]


def read_settings(config: pytest.Config) -> AideSettings:
    """Options and ini values as checked settings; a bad value is a usage error."""
    values = {
        name: _convert(config, name, kind, default) for name, kind, default, _ in OPTIONS
    }
    rootdir = Path(str(config.rootpath))
    steps = int(values["steps"] or 0)
    if steps < 0:
        raise pytest.UsageError(f"--aide-steps must be 0 or more, not {steps}")
    if values["resume"] and steps == 0:  # else a plain test run would ignore it, silently
        raise pytest.UsageError(
            f"--aide-resume {values['resume']} needs --aide-steps N, the run's total with the "
            "steps already done included (e.g. --aide-steps 20 continues a run to 20 steps)"
        )
    drafts = values["drafts"]
    if drafts is None:
        drafts = max(1, math.ceil(0.15 * steps))
    if int(drafts) < 1:
        raise pytest.UsageError(f"--aide-drafts must be at least 1, not {drafts}")
    debug_prob = float(values["debug-prob"])  # type: ignore[arg-type]
    if not 0.0 <= debug_prob <= 1.0:
        raise pytest.UsageError(f"--aide-debug-prob must be between 0 and 1, not {debug_prob}")
    depth = values["max-debug-depth"]
    if depth is None:
        depth = max(1, math.ceil(0.1 * steps))
    timeout = float(values["timeout"])  # type: ignore[arg-type]
    if timeout <= 0:
        raise pytest.UsageError(f"--aide-timeout must be positive seconds, not {timeout}")
    confirm_rounds = int(values["confirm-rounds"])  # type: ignore[call-overload]
    if confirm_rounds < MIN_CONFIRM_ROUNDS:
        raise pytest.UsageError(
            f"--aide-confirm-rounds must be at least {MIN_CONFIRM_ROUNDS}, not "
            f"{confirm_rounds}: a speedup is confirmed by a sign test over the rounds, which "
            f"cannot reach 1% significance with fewer"
        )
    budget = values["budget"]
    if budget is not None and float(budget) <= 0:  # type: ignore[arg-type]
        raise pytest.UsageError(f"--aide-budget must be a positive amount of USD, not {budget}")
    sandbox = str(values["sandbox"]).strip().lower()
    if sandbox not in SANDBOX_MODES:
        raise pytest.UsageError(
            f"--aide-sandbox must be one of {', '.join(SANDBOX_MODES)}, not {values['sandbox']!r}"
        )
    warm = str(values["warm"]).strip().lower()
    if warm not in WARM_MODES:
        raise pytest.UsageError(
            f"--aide-warm must be one of {', '.join(WARM_MODES)}, not {values['warm']!r}"
        )
    workers = _workers(values["workers"])
    gpus_per_worker = int(values["gpus-per-worker"])  # type: ignore[call-overload]
    if gpus_per_worker < 0:
        raise pytest.UsageError(
            f"--aide-gpus-per-worker must be 0 or more GPUs, not {gpus_per_worker}"
        )
    measure = _choice("measure", values["measure"], MEASURE_MODES)
    executor = _choice("executor", values["executor"], EXECUTORS)
    if executor != "ray" and (values["ray-address"] or values["ray-shared-fs"]):
        raise pytest.UsageError(
            "--aide-ray-address and --aide-ray-shared-fs only apply to the Ray executor: "
            "add --aide-executor ray"
        )
    log_dir = Path(str(values["log-dir"] or ".aide")).expanduser()
    if not log_dir.is_absolute():
        log_dir = rootdir / log_dir
    return AideSettings(
        steps=steps,
        model=values["model"],  # type: ignore[arg-type]
        base_url=values["base-url"],  # type: ignore[arg-type]
        instructions=_read_instructions(values["instructions"], rootdir),  # type: ignore[arg-type]
        log_dir=log_dir,
        preserve_source=bool(values["preserve-source"]),
        timeout=timeout,
        drafts=int(drafts),  # type: ignore[call-overload]
        debug_prob=debug_prob,
        max_debug_depth=int(depth),  # type: ignore[call-overload]
        resume=values["resume"],  # type: ignore[arg-type]
        reflect=bool(values["reflect"]),
        budget=None if budget is None else float(budget),  # type: ignore[arg-type]
        seed=int(values["seed"]),  # type: ignore[call-overload]
        confirm_rounds=confirm_rounds,
        sandbox=sandbox,
        network=bool(values["network"]),
        warm=warm,
        env_drop=_names(values["env-drop"]),
        env_keep=_names(values["env-keep"]),
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        measure=measure,
        executor=executor,
        ray_address=values["ray-address"],  # type: ignore[arg-type]
        ray_shared_fs=bool(values["ray-shared-fs"]),
    )


def _workers(raw: object) -> int | None:
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


def _choice(name: str, raw: object, allowed: tuple[str, ...]) -> str:
    value = str(raw).strip().lower()
    if value not in allowed:
        raise pytest.UsageError(f"--aide-{name} must be one of {', '.join(allowed)}, not {raw!r}")
    return value


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("aide", "pytest-aide: optimize code against the test suite")
    for name, kind, _default, help_text in OPTIONS:
        dest = "aide_" + name.replace("-", "_")
        if kind == "bool":
            group.addoption(f"--aide-{name}", action="store_true", default=False, dest=dest,
                            help=help_text)
        else:
            group.addoption(f"--aide-{name}", action="store", default=None, dest=dest,
                            metavar=name.upper().replace("-", "_"), help=help_text)
        parser.addini(dest, help=help_text, default=None)
