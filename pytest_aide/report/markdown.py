"""``report.md``: the run as a page to read or paste into a pull request (and the CI job's
summary when ``$GITHUB_STEP_SUMMARY`` is set).

Plans, errors and code come from candidates: their control characters are escaped
(``formatting.printable``) before they are placed, so the page holds no escape sequence for
a terminal that ``cat``s it nor a bidi override for a reader; newline and tab stay.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pytest_aide.journal import Journal, Node, write_atomic
from pytest_aide.report.artifacts import code_patch
from pytest_aide.report.formatting import (
    confirmed_text,
    fmt_change,
    fmt_metric,
    fmt_seconds,
    fmt_tokens,
    guards_text,
    journal_proposer,
    metric_change,
    node_note,
    objective_labels,
    printable,
    proposer_text,
    short_reason,
    token_totals,
    totals_text,
    values_text,
)

# ---------------------------------------------------------------------------------------------
# report.md


def _fence(text: str) -> str:
    """A backtick fence longer than any run of backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _cell(text: str) -> str:
    """One table cell: escaped, on one line, with no ``|`` that would end it."""
    return printable(text, keep_newlines=True).replace("\n", " ").replace("|", "\\|")


def _code_span(text: str) -> str:
    """Inline code that a backtick inside ``text`` cannot end early."""
    text = printable(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _node_metrics(journal: Journal, node: Node) -> str:
    if not node.is_good:
        return node.status
    return values_text(journal, node)


def render_report_md(journal: Journal, original_code: str, best_code: str | None) -> str:
    out = [
        *_header(journal),
        *_objectives(journal),
        *_path_to_best(journal),
        *_best_diff(journal, original_code, best_code),
        *_all_nodes(journal),
    ]
    # every part escapes what it places; this keeps the promise for anything added later
    return printable("\n".join(out), keep_newlines=True)


def _header(journal: Journal) -> list[str]:
    """The title and the run's facts: target, proposer, steps and seed, outcome, totals."""
    settings = journal.settings
    symbol = f", only `{journal.symbol}` in it" if journal.symbol else ""
    facts = [f"target `{journal.target}` (module `{journal.module}`{symbol})"
             if len(journal.relpaths) == 1 else
             "targets " + ", ".join(f"`{relpath}`" for relpath in journal.relpaths)]
    proposer = journal_proposer(journal)
    if proposer:
        facts.append(f"proposer {proposer_text(proposer)}")
    done = sum(1 for node in journal.nodes if node.operator != "baseline")
    asked = settings.get("steps")
    steps = f"{done} step{'' if done == 1 else 's'}"
    if isinstance(asked, int) and asked != done:
        steps += f" of {asked} asked"
    facts.append(steps)
    if "seed" in settings:
        facts.append(f"seed `{settings['seed']}`")
    if journal.outcome:
        facts.append(journal.outcome)
    facts.append(totals_text(journal))
    if guards_text(journal):
        facts.append(guards_text(journal))
    return [f"# pytest-aide run `{journal.run_id}`", "",
            *("- " + printable(fact) for fact in facts), ""]


def _objectives(journal: Journal) -> list[str]:
    """One row per objective: baseline, best, change; then the confirmation."""
    root, best = journal.root, journal.best
    labels = objective_labels(journal)
    out = ["## Objectives", "", "| test | metric | direction | baseline | best | change |",
           "| --- | --- | --- | --- | --- | --- |"]
    for objective in journal.objectives:
        nodeid = objective["nodeid"]
        direction = "higher is better" if objective["maximize"] else "lower is better"
        metric = objective["metric"]
        best_value = fmt_metric(best.metrics.get(nodeid), metric) if best else "n/a"
        change = fmt_change(metric_change(journal, best, nodeid)) if best else "n/a"
        out.append(
            f"| `{_cell(nodeid)}` | {labels[nodeid]} | {direction} "
            f"| {fmt_metric(root.metrics.get(nodeid), metric)} | {best_value} | {change} |"
        )
    out.append("")
    if best is not None and best.confirmed:
        out += [f"Best {confirmed_text(best.confirmed)}.", ""]
    return out


def _path_to_best(journal: Journal) -> list[str]:
    """Each node from the baseline to the best: operator, metrics, plan, failure."""
    best = journal.best
    out = ["## Path to the best", ""]
    if best is None or best.id == journal.root.id:
        return [*out, "No candidate beat the baseline.", ""]
    for node in journal.path_to(best.id):
        out += [
            f"### #{node.id} {node.operator} (step {node.step}): {_node_metrics(journal, node)}",
            "",
            *(f"> {line}" if line else ">" for line in _lines(node.plan or "(no plan)")),
            "",
        ]
        if not node.is_good:
            out += [f"{node.status}: {_code_span(short_reason(node.error, 200))}", ""]
    return out


def _lines(text: str) -> list[str]:
    """The lines of a candidate's text, escaped: only a newline ends one (not a carriage
    return, a form feed or U+2028, where ``str.splitlines`` would split)."""
    return printable(text, keep_newlines=True).splitlines()


def _best_diff(journal: Journal, original_code: str, best_code: str | None) -> list[str]:
    diff = code_patch(journal.relpaths, original_code, best_code) if best_code else ""
    diff = printable(diff, keep_newlines=True)  # shown, not applied: best.patch stays raw
    if not diff:
        return ["## Best diff", "", "No change: the original code stays.", ""]
    fence = _fence(diff)
    return ["## Best diff", "", f"{fence}diff", diff.rstrip("\n"), fence, ""]


def _all_nodes(journal: Journal) -> list[str]:
    return [
        "## All nodes",
        "",
        "| # | step | parent | operator | status | metrics | change | time | tokens | note "
        "| plan |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_node_row(journal, node) for node in journal.nodes),
        "",
    ]


def _node_row(journal: Journal, node: Node) -> str:
    parent = "" if node.parent is None else str(node.parent)
    changes = []
    if node.is_good and node.id != journal.root.id:
        labels = objective_labels(journal)
        changes = [fmt_change(metric_change(journal, node, n)) for n in labels]
    tokens, _ = token_totals(node)
    # the same note as the terminal's step line: a good node faster than the best says why
    note = node_note(node) if node.is_good else short_reason(node.error)
    plan = node.plan.split("\n")[0][:80]
    mark = " ★" if node.id == journal.best_id else ""
    return (
        f"| {node.id}{mark} | {node.step} | {parent} | {node.operator} | {node.status} "
        f"| {_cell(_node_metrics(journal, node))} | {' '.join(changes)} "
        f"| {fmt_seconds(node.duration)} | {fmt_tokens(tokens) if tokens else ''} "
        f"| {_cell(note)} | {_cell(plan)} |"
    )


def write_report_md(
    journal: Journal, run_dir: Path, original_code: str, best_code: str | None,
    step_summary: bool = True,
) -> Path:
    """Write ``report.md`` in the run dir; append it to ``$GITHUB_STEP_SUMMARY`` when set
    (and ``step_summary``: a report written again is not appended twice)."""
    text = render_report_md(journal, original_code, best_code)
    path = run_dir / "report.md"
    write_atomic(path, text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and step_summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return path
