"""Reading the settings: every option's default, its ini name, and every message it can give.

The options are the user's contract (README); these tests pin it while the table behind it
(settings.py) changes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aide.settings import AideSettings, read_settings


def settings(pytester: pytest.Pytester, *args: str, ini: str = "") -> AideSettings:
    if ini:
        pytester.makeini("[pytest]\n" + ini)
    return read_settings(pytester.parseconfig(*args))


def usage_error(pytester: pytest.Pytester, *args: str, ini: str = "") -> str:
    with pytest.raises(pytest.UsageError) as caught:
        settings(pytester, *args, ini=ini)
    return str(caught.value)


def test_defaults(pytester: pytest.Pytester) -> None:
    got = settings(pytester)
    assert got == AideSettings(log_dir=Path(str(pytester.path)) / ".aide")
    assert not got.optimizing and not got.parallel


NAMES = [
    "steps", "model", "base-url", "instructions", "log-dir", "preserve-source", "timeout",
    "drafts", "debug-prob", "max-debug-depth", "resume", "reflect", "fail-on", "budget", "price",
    "seed", "sandbox",
    "network", "warm", "env-drop", "env-keep", "guards", "compare", "rtol", "atol",
    "confirm-rounds", "workers", "gpus-per-worker", "measure", "executor", "ray-address",
    "ray-shared-fs", "ray-wait",
]


def test_every_option_has_a_command_line_flag_and_an_ini_name_in_order(
    pytester: pytest.Pytester,
) -> None:
    text = pytester.runpytest("--help").stdout.str()
    flags = [text.index(f"  --aide-{name}") for name in NAMES]
    assert flags == sorted(flags)
    inis = [text.index(f"  aide_{name.replace('-', '_')} ") for name in NAMES]
    assert inis == sorted(inis)


def test_in_ci_the_source_is_preserved_unless_asked_otherwise(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    assert settings(pytester).preserve_source
    assert not settings(pytester, ini="aide_preserve_source = false\n").preserve_source
    monkeypatch.setenv("CI", "false")
    assert not settings(pytester).preserve_source


def test_every_value_from_the_command_line(pytester: pytest.Pytester, tmp_path: Path) -> None:
    got = settings(
        pytester,
        "--aide-steps", "10", "--aide-model", "tune", "--aide-base-url", "http://x/v1",
        "--aide-instructions", "be quick", "--aide-log-dir", str(tmp_path / "runs"),
        "--aide-preserve-source", "--aide-timeout", "30", "--aide-drafts", "3",
        "--aide-debug-prob", "0.25", "--aide-max-debug-depth", "4", "--aide-resume", "latest",
        "--aide-reflect", "--aide-budget", "1.5", "--aide-price", "0.5, 2",
        "--aide-fail-on", "No-Improvement", "--aide-seed", "9", "--aide-sandbox", "OFF",
        "--aide-network", "--aide-warm", "off", "--aide-env-drop", "A, B",
        "--aide-env-keep", "C D", "--aide-guards", "Files", "--aide-compare", "off",
        "--aide-confirm-rounds", "7", "--aide-workers", "auto",
        "--aide-gpus-per-worker", "1", "--aide-measure", "shared", "--aide-executor", "ray",
        "--aide-ray-address", "auto", "--aide-ray-shared-fs", "--aide-ray-wait", "60",
    )
    assert got == AideSettings(
        steps=10, model="tune", base_url="http://x/v1", instructions="be quick",
        log_dir=tmp_path / "runs", preserve_source=True, timeout=30.0, drafts=3,
        debug_prob=0.25, max_debug_depth=4, resume="latest", reflect=True, budget=1.5,
        price=(0.5, 2.0), fail_on="no-improvement", seed=9, sandbox="off", network=True,
        warm="off", env_drop=["A", "B"],
        env_keep=["C", "D"], guards="files", compare="off", confirm_rounds=7, workers=None,
        gpus_per_worker=1,
        measure="shared", executor="ray", ray_address="auto", ray_shared_fs=True,
        ray_wait=60.0,
    )


def test_every_value_from_the_ini_file(pytester: pytest.Pytester) -> None:
    (pytester.path / "guide.txt").write_text("read the docs\n")
    got = settings(pytester, ini=(
        "aide_steps = 20\naide_model = openai:gpt-5\naide_base_url = http://y/v1\n"
        "aide_instructions = guide.txt\naide_log_dir = runs\naide_preserve_source = yes\n"
        "aide_timeout = 12.5\naide_drafts = 2\naide_debug_prob = 1\n"
        "aide_max_debug_depth = 5\naide_reflect = true\naide_budget = 3\naide_seed = 4\n"
        "aide_price = 1,4\naide_fail_on = never\n"
        "aide_sandbox = auto\naide_network = on\naide_warm = auto\n"
        "aide_env_drop =\n    ONE\n    TWO\naide_env_keep = THREE\n"
        "aide_guards = selected\naide_compare = on\n"
        "aide_confirm_rounds = 9\naide_workers = 3\naide_gpus_per_worker = 0\n"
        "aide_measure = isolated\naide_executor = local\n"
    ))
    assert got == AideSettings(
        steps=20, model="openai:gpt-5", base_url="http://y/v1",
        instructions="read the docs\n", log_dir=Path(str(pytester.path)) / "runs",
        preserve_source=True, timeout=12.5, drafts=2, debug_prob=1.0, max_debug_depth=5,
        reflect=True, budget=3.0, price=(1.0, 4.0), fail_on="never", seed=4, network=True,
        env_drop=["ONE", "TWO"],
        env_keep=["THREE"], guards="selected", confirm_rounds=9, workers=3,
    )
    assert got.parallel


def test_the_command_line_wins_over_the_ini_file(pytester: pytest.Pytester) -> None:
    got = settings(pytester, "--aide-steps", "3", ini="aide_steps = 20\naide_seed = 2\n")
    assert (got.steps, got.seed) == (3, 2)


def test_search_defaults_scale_with_the_steps(pytester: pytest.Pytester) -> None:
    got = settings(pytester, "--aide-steps", "20")
    assert (got.drafts, got.max_debug_depth) == (3, 2)
    got = settings(pytester, "--aide-steps", "1")
    assert (got.drafts, got.max_debug_depth) == (1, 1)


@pytest.mark.parametrize(("args", "ini", "message"), [
    (["--aide-steps", "-1"], "", "--aide-steps must be 0 or more, not -1"),
    (["--aide-steps", "many"], "", "--aide-steps needs a number (int), not 'many'"),
    (["--aide-timeout", "soon"], "", "--aide-timeout needs a number (float), not 'soon'"),
    ([], "aide_reflect = maybe\n", "aide_reflect must be true or false, not 'maybe'"),
    (["--aide-resume", "latest"], "",
     "--aide-resume latest needs --aide-steps N, the run's total with the steps already done "
     "included (e.g. --aide-steps 20 continues a run to 20 steps)"),
    (["--aide-steps", "2", "--aide-drafts", "0"], "", "--aide-drafts must be at least 1, not 0"),
    (["--aide-debug-prob", "1.5"], "", "--aide-debug-prob must be between 0 and 1, not 1.5"),
    (["--aide-timeout", "0"], "", "--aide-timeout must be positive seconds, not 0.0"),
    (["--aide-confirm-rounds", "6"], "",
     "--aide-confirm-rounds must be at least 7, not 6: a speedup is confirmed by a sign test "
     "over the rounds, which cannot reach 1% significance with fewer"),
    (["--aide-budget", "0"], "", "--aide-budget must be a positive amount of USD, not 0.0"),
    (["--aide-price", "3"], "",
     "--aide-price must be IN,OUT: two amounts of USD per million tokens (input, output), "
     "e.g. --aide-price 0.5,2; not '3'"),
    (["--aide-fail-on", "always"], "",
     "--aide-fail-on must be one of never, error, no-improvement, not 'always'"),
    (["--aide-sandbox", "docker"], "",
     "--aide-sandbox must be one of auto, bwrap, off, not 'docker'"),
    (["--aide-warm", "hot"], "", "--aide-warm must be one of auto, off, not 'hot'"),
    (["--aide-guards", "all"], "", "--aide-guards must be one of auto, files, selected, not 'all'"),
    (["--aide-compare", "yes"], "", "--aide-compare must be one of on, off, not 'yes'"),
    (["--aide-workers", "0"], "",
     "--aide-workers must be a number of evaluations at once (1 or more) or 'auto', not '0'"),
    (["--aide-gpus-per-worker", "-1"], "",
     "--aide-gpus-per-worker must be 0 or more GPUs, not -1"),
    (["--aide-measure", "loose"], "",
     "--aide-measure must be one of isolated, shared, not 'loose'"),
    (["--aide-executor", "slurm"], "", "--aide-executor must be one of local, ray, not 'slurm'"),
    (["--aide-ray-address", "auto"], "",
     "--aide-ray-address, --aide-ray-shared-fs and --aide-ray-wait only apply to the Ray "
     "executor: add --aide-executor ray"),
    (["--aide-ray-wait", "0", "--aide-executor", "ray"], "",
     "--aide-ray-wait must be positive seconds, not 0.0"),
    (["--aide-ray-shared-fs"], "",
     "--aide-ray-address, --aide-ray-shared-fs and --aide-ray-wait only apply to the Ray "
     "executor: add --aide-executor ray"),
])
def test_every_message(pytester: pytest.Pytester, args: list[str], ini: str, message: str) -> None:
    assert usage_error(pytester, *args, ini=ini) == message


def test_instructions_are_text_unless_they_name_a_file(pytester: pytest.Pytester) -> None:
    assert settings(pytester, "--aide-instructions", "no such file").instructions == (
        "no such file"
    )
