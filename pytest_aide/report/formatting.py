"""Small formatters and what the journal says, shared by the terminal, ``report.md`` and
``tree.html`` so that all three tell the same story.

Candidate text (plans, errors, code) is data: wherever it is shown, :func:`printable` makes
its control characters visible instead of letting a terminal or a Markdown page act on them.
"""

from __future__ import annotations

import math
import re

from pytest_aide.journal import BUGGY, TAMPERED, Journal, Node, Phase
from pytest_aide.metrics import BENCHMARK_STATS

#: Several objectives are listed one by one up to this many; beyond, the score is shown.
MAX_LISTED_OBJECTIVES = 3
#: A step line's reason: room for a test id, its error's first line and its location.
REASON_WIDTH = 120
#: What the built-in tuner is called where a person reads the proposer's name.
TUNER_TEXT = "tune (built-in offline tuner)"
#: The note of a good node that was measured again next to the best and then compared.
REMEASURED_NOTE = "measured again next to the best: "
#: Why, when the journal does not say (older journals, or the speed check).
SPEED_CHANGED = "the machine's speed had changed"


# ---------------------------------------------------------------------------------------------
# Candidate text is data

#: Unicode's explicit bidirectional formatting characters: they reorder the text that
#: follows on screen, so code or a message can read differently from what it is
#: ("Trojan Source", CVE-2021-42574).
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
#: C0 controls but tab and newline, DEL, C1 controls (``\x9b`` is a one-byte CSI),
#: Unicode's line and paragraph separators, and the bidi controls.
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029" + BIDI_CONTROLS
_ONE_LINE = re.compile(f"[\n{_UNSAFE}]")  # one line: a newline is escaped too
_LINES = re.compile(f"[{_UNSAFE}]")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    r"""``text`` with each control character written as Python writes it in a string
    literal (``\x1b``, ``\r``, ``\u202e``), so escape sequences that come from a candidate
    (clear line, window title, hidden text, a carriage return or backspaces that overwrite
    what was printed, bidi overrides) are shown, never obeyed.

    Tab always stays; newline only with ``keep_newlines``, where several lines are shown (a
    carriage return never: CRLF text shows ``\r`` at its line ends). Text without control
    characters comes back unchanged, and so does text that was already escaped (the escapes
    are printable), so applying it twice is harmless. A backslash is not escaped: a literal
    ``\x1b`` in the text looks the same as an escaped ESC, the price of leaving ordinary
    text (Windows paths, regular expressions) as it is.
    """
    pattern = _LINES if keep_newlines else _ONE_LINE
    return pattern.sub(lambda match: ascii(match[0])[1:-1], text)


# ---------------------------------------------------------------------------------------------
# Small formatters


def fmt_value(value: float | None) -> str:
    """A metric value, short but with enough digits to tell candidates apart."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-4):
        return f"{value:.3e}"
    return f"{value:.4g}"


#: The units of time a duration is shown in, largest first (a benchmark's statistics are
#: seconds).
_TIME_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "\u00b5s"), (1e-9, "ns"))


def fmt_metric(value: float | None, metric: str) -> str:
    """A metric's value with its unit where it is known: a pytest-benchmark statistic of
    time in s, ms, us or ns (``212 ms``), ``ops`` per second; else as ``fmt_value``."""
    if value is None or not math.isfinite(value) or metric not in BENCHMARK_STATS:
        return fmt_value(value)
    if metric == "ops":
        return f"{value:.4g} ops/s"
    scale, unit = next(((s, u) for s, u in _TIME_UNITS if abs(value) >= s), _TIME_UNITS[-1])
    return f"{value / scale:.4g} {unit}"


def metric_of(journal: Journal, nodeid: str) -> str:
    """The metric an objective of ``journal`` reads (``mean``, ``accuracy``...)."""
    return next((o["metric"] for o in journal.objectives if o["nodeid"] == nodeid), "")


def fmt_change(fraction: float | None) -> str:
    """A relative change (``-0.123``) as a signed percentage (``-12.3%``)."""
    return "n/a" if fraction is None else f"{fraction * 100:+.1f}%"


def fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def fmt_tokens(count: int) -> str:
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def fmt_cost(usd: float) -> str:
    return f"${usd:.2f}" if usd >= 0.1 else f"${usd:.4f}"


def relative_change(before: float | None, after: float | None) -> float | None:
    """``(after - before) / |before|``, or None when it has no meaning."""
    if before is None or after is None or before == 0:
        return None
    if not (math.isfinite(before) and math.isfinite(after)):
        return None
    return (after - before) / abs(before)


#: The judge's heading of a test that did not pass (evaluation.error_summary).
_TEST_HEADING = re.compile(r"^(\S+::\S+): (failed|error)$", re.MULTILINE)
#: pytest's failure location, the last line of a test's report: ``tests/x.py:12: Error``.
_LOCATION = re.compile(r"^(\S+\.py:\d+): \S+$", re.MULTILINE)
#: What a candidate that does not compile says after this.
_NO_COMPILE = "does not compile: "


def short_reason(error: str, width: int = REASON_WIDTH) -> str:
    """What went wrong, in one line cut to ``width``.

    Tampering comes first (what the tests say of a tampering candidate is beside the
    point). A failing test is named first, with its error's first line and the location the error
    was raised at (a shared helper's line means nothing without the test), and how many
    more failed. A candidate that does not compile gives the file, line and message.
    Otherwise tracebacks and pytest summaries put the cause near the end, so the last line
    that names an error wins, or else the first non-empty line.
    """
    reason = (_tampering(error) or _failing_test(error, width) or _not_compiling(error)
              or _error_line(error))
    return reason if len(reason) <= width else reason[: width - 3] + "..."


def _tampering(error: str) -> str:
    prefix = "tampering: "
    line = next((line for line in error.splitlines() if line.startswith(prefix)), "")
    return line[len(prefix):]


def _failing_test(error: str, width: int) -> str:
    """``tests/x.py::test_a failed: <its error's first line> (tests/h.py:9) (+2 more)``,
    the error's line cut so that the rest fits in ``width``."""
    headings = list(_TEST_HEADING.finditer(error))
    if not headings:
        return ""
    first = headings[0]
    end = headings[1].start() if len(headings) > 1 else len(error)
    report = error[first.end():end]
    messages = [line[1:].strip() for line in report.splitlines() if line.startswith("E ")]
    location = _LOCATION.search(report)
    head = f"{first[1]} {first[2]}"
    where = location[1] if location else ""
    if len(where) > 40:  # deep in a run directory or a library: the file's name will do
        where = where.rsplit("/", 1)[-1]
    tail = f" ({where})" if where else ""
    if len(headings) > 1:
        tail += f" (+{len(headings) - 1} more)"
    if messages:
        room = max(40, width - len(head) - len(tail) - 2)
        message = messages[0] if len(messages[0]) <= room else messages[0][: room - 3] + "..."
        head += f": {message}"
    return head + tail


def _not_compiling(error: str) -> str:
    line = next((line for line in error.splitlines() if _NO_COMPILE in line), "")
    return "does not compile: " + line.split(_NO_COMPILE, 1)[1] if line else ""


def _error_line(error: str) -> str:
    lines = [line.strip(" =_-\t") for line in error.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    named = [line for line in lines if re.search(r"Error|Exception|FAILED|Timeout|timed out", line)]
    reason = named[-1] if named else lines[0]
    failed = re.match(r"FAILED (\S+) - (.*)", reason)
    if failed:  # pytest's short summary: keep the test's name and the message
        reason = f"{failed[1].split('::')[-1]}: {failed[2]}"
    return reason


# ---------------------------------------------------------------------------------------------
# Reading the journal


def objective_labels(journal: Journal) -> dict[str, str]:
    """A short name per objective nodeid: the metric, or ``test.metric`` when metrics repeat."""
    metrics = [o["metric"] for o in journal.objectives]
    labels = {}
    for objective in journal.objectives:
        label = objective["metric"]
        if metrics.count(label) > 1:
            label = f"{objective['nodeid'].split('::')[-1]}.{label}"
        labels[objective["nodeid"]] = label
    return labels


def proposer_text(name: str | None) -> str:
    """The proposer as a person reads it: the tuner by what it is, an LLM as provider:model."""
    if not name:
        return "not recorded"
    return TUNER_TEXT if name == "tune" else name


def journal_proposer(journal: Journal) -> str | None:
    """The proposer's name the run recorded; older journals only kept ``--aide-model``."""
    return journal.settings.get("proposer") or journal.settings.get("model")


def node_note(node: Node) -> str:
    """Why a good node is not the best, or that it was measured again; empty when neither.

    A good node's ``note`` is the search's verdict (e.g. "improvement within noise"); the
    terminal and report.md both show this text, so a node faster than the best is explained.
    """
    if not node.is_good:
        return ""
    if node.note:
        return node.note
    if not node.remeasured:
        return ""
    return REMEASURED_NOTE + (node.remeasure_reason or SPEED_CHANGED)


def best_so_far(journal: Journal, upto: int) -> Node | None:
    """The good node with the highest objective among nodes ``0..upto`` (first one on ties)."""
    best = None
    for node in journal.nodes[: upto + 1]:
        if not node.is_good or node.objective is None:
            continue
        if best is None or node.objective > best.objective:  # type: ignore[operator]
            best = node
    return best


def metric_change(journal: Journal, node: Node, nodeid: str) -> float | None:
    return relative_change(journal.root.metrics.get(nodeid), node.metrics.get(nodeid))


def lists_each(journal: Journal) -> bool:
    return len(journal.objectives) <= MAX_LISTED_OBJECTIVES


def values_text(journal: Journal, node: Node) -> str:
    labels = objective_labels(journal)
    if len(journal.objectives) == 1 or lists_each(journal):
        return " ".join(f"{labels[n]}={fmt_metric(node.metrics.get(n), metric_of(journal, n))}"
                        for n in labels)
    return f"score={fmt_value(node.objective)}"


def best_text(journal: Journal, best: Node) -> str:
    """The best so far, for a step line: a candidate not yet measured again against the
    original (the confirmation, at the end of the run) is marked provisional."""
    labels = objective_labels(journal)
    provisional = best.id != journal.root.id and not best.confirmed
    if len(labels) == 1:
        (nodeid,) = labels
        change = metric_change(journal, best, nodeid)
        notes = [fmt_change(change)] if change is not None else []
        notes += ["provisional"] if provisional else []
        suffix = f" ({', '.join(notes)})" if notes else ""
        if best.id == journal.root.id:
            suffix = " (baseline)"
        return f"best={fmt_metric(best.metrics.get(nodeid), metric_of(journal, nodeid))}{suffix}"
    mark = " (provisional)" if provisional else ""
    if lists_each(journal):
        changes = " ".join(
            f"{label} {fmt_change(metric_change(journal, best, n))}" for n, label in labels.items()
        )
        return f"best: {changes}{mark}"
    return f"best score={fmt_value(best.objective)}{mark}"


def token_totals(node_or_journal: Node | Journal) -> tuple[int, float | None]:
    if isinstance(node_or_journal, Journal):
        usage = node_or_journal.total_usage()
    else:
        usage = node_or_journal.usage
    return usage.input_tokens + usage.output_tokens, usage.cost_usd


#: How a duplicate (a buggy node that repeats an earlier one, not run) is counted and shown.
DUPLICATE = "duplicate"


def status_counts(journal: Journal, *, skip_baseline: bool = False) -> dict[str, int]:
    """Nodes by status; a duplicate counts as such, not as buggy: nothing was wrong with it
    but that it had been tried."""
    counts: dict[str, int] = {}
    for node in journal.nodes:
        if skip_baseline and node.operator == "baseline":
            continue
        kind = DUPLICATE if node.duplicate_of is not None else str(node.status)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def wall_seconds(journal: Journal) -> float:
    """From the first node's start to the last node's end; the sum of step times if unknown."""
    timed = [n for n in journal.nodes if n.started > 0]
    if timed:
        start = min(n.started - n.propose_seconds for n in timed)
        return max(n.started + n.duration for n in timed) - start
    return sum(n.duration + n.propose_seconds for n in journal.nodes)


def time_text(journal: Journal) -> str:
    """The whole run's time with its parts (``58.0s: search 12.0s, confirmation 40.0s, final
    check 6.0s``), or the steps' wall time for a journal that kept no parts."""
    parts = [(phase.value, journal.phase_seconds[phase.value]) for phase in Phase
             if phase.value in journal.phase_seconds]
    if not parts:
        return fmt_seconds(wall_seconds(journal))
    total = sum(seconds for _, seconds in parts)
    return f"{fmt_seconds(total)}: " + ", ".join(f"{n} {fmt_seconds(s)}" for n, s in parts)


def totals_text(journal: Journal) -> str:
    counts = status_counts(journal, skip_baseline=True)
    steps = sum(counts.values())
    text = (
        f"{steps} step{'' if steps == 1 else 's'}: {counts.get('good', 0)} good, "
        f"{counts.get(BUGGY, 0)} buggy, "
        f"{counts.get(TAMPERED, 0)} tampered"
        + (f", {counts[DUPLICATE]} duplicate" if counts.get(DUPLICATE) else "")
        + f"; {time_text(journal)}"
    )
    tokens, cost = token_totals(journal)
    if tokens:
        text += f"; {fmt_tokens(tokens)} tokens"
    if cost is not None:
        text += f", {fmt_cost(cost)}"
    return text


def guards_text(journal: Journal) -> str:
    """How many guards candidates' evaluations ran when they ran only those that ran what
    they changed ("" when every evaluation ran them all): "guards per candidate: typically
    3 of 12 (those that ran the functions it changed); 2 ran all"."""
    evaluated = [n for n in journal.nodes[1:] if n.duplicate_of is None and n.outcomes]
    chosen = [n.guards_run for n in evaluated if n.guards_run]
    if not chosen:
        return ""
    counts = sorted(run for run, _ in chosen)
    whole = len(evaluated) - len(chosen)
    return (f"guards per candidate: typically {counts[(len(counts) - 1) // 2]} of "
            f"{chosen[0][1]} (those that ran the functions it changed)"
            + (f"; {whole} ran all" if whole else ""))


def confirmed_text(confirmed: dict) -> str:
    """The re-measurement of the best, in one sentence."""
    verdict = "confirmed" if confirmed.get("confirmed") else "NOT confirmed"
    if confirmed.get("method") == "rerun":
        return f"{verdict}: the best was run again and still beat the baseline" if confirmed.get(
            "confirmed") else f"{verdict}: the best did not beat the baseline when run again"
    metric = confirmed.get("metric", "metric")
    change = fmt_change(confirmed.get("change"))
    interval = ""
    if confirmed.get("low") is not None and confirmed.get("high") is not None:
        interval = f" (interval {fmt_change(confirmed['low'])} .. {fmt_change(confirmed['high'])})"
    rounds = confirmed.get("rounds")
    discarded = confirmed.get("discarded")
    unsteady = (f" ({discarded} more rounds discarded: the machine's speed changed during them)"
                if discarded else "")
    why = f"; {confirmed['fresh']}" if confirmed.get("fresh") else ""
    if isinstance(rounds, int):
        return (f"{verdict}: {metric} {change}{interval}, re-measured over {rounds} rounds "
                f"interleaved with the baseline{unsteady}{why}")
    return f"{verdict}: {metric} {change}{interval}, re-measured interleaved with the baseline"
