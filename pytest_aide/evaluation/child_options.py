"""Which of the user's command-line options each evaluation's child pytest gets too.

The child reads the same ini file and ``PYTEST_ADDOPTS``, but not the parent's command
line. Options that change how a test is measured or loaded must reach it, or
``pytest --benchmark-min-rounds=20 --aide-steps 5`` would search with five rounds and the
plain run would report with twenty. Options that select tests, report, or write files
(``-k``, ``--benchmark-autosave``, ``--junitxml``, ...) stay with the parent: the child runs
the given node ids, and anything it writes in the project would count as tampering.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Forwarded options, with how many values follow them: 1, 0 (a flag), or "?" (one value
#: when the next argument is not an option, as argparse reads ``nargs="?"``).
FORWARDED: dict[str, int | str] = {
    "--benchmark-min-time": 1,
    "--benchmark-max-time": 1,
    "--benchmark-min-rounds": 1,
    "--benchmark-precision": 1,
    "--benchmark-confidence": 1,
    "--benchmark-timer": 1,
    "--benchmark-calibration-precision": 1,
    "--benchmark-warmup": "?",
    "--benchmark-warmup-iterations": 1,
    "--benchmark-disable-gc": 0,
    "--benchmark-enable": 0,
    "-p": 1,
    "-o": 1,
    "--override-ini": 1,
    "-W": 1,
    "--pythonwarnings": 1,
    "--import-mode": 1,
}


def child_options(args: Sequence[str]) -> list[str]:
    """The options among the parent's ``args`` that the child should get, in order."""
    kept: list[str] = []
    index = 0
    while index < len(args):
        arg = str(args[index])
        index += 1
        name, joined = _split(arg)
        arity = FORWARDED.get(name)
        if arity is None:
            continue
        values: list[str] = []
        if not joined:
            wanted = arity if isinstance(arity, int) else int(
                index < len(args) and not str(args[index]).startswith("-"))
            values = [str(v) for v in args[index:index + wanted]]
            index += wanted
        plugin = arg[2:] if joined else "".join(values)
        if name == "-p" and plugin.startswith("pytest_aide"):
            continue  # the child loads its own worker plugin
        kept += [arg, *values]
    return kept


def _split(arg: str) -> tuple[str, bool]:
    """The option's name, and whether its value is in the same argument
    (``--x=1``, ``-pname``, ``-Werror``)."""
    if arg.startswith("--"):
        return arg.split("=", 1)[0], "=" in arg
    if arg.startswith("-") and len(arg) > 2 and arg[:2] in FORWARDED:
        return arg[:2], True
    return arg, False
