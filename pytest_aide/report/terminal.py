"""The terminal's view of a run: one line per step, and the summary at the end.
"""

from __future__ import annotations

from pathlib import Path

from pytest_aide.journal import Journal, Node
from pytest_aide.report.formatting import (
    best_so_far,
    best_text,
    confirmed_text,
    fmt_change,
    fmt_metric,
    fmt_seconds,
    fmt_tokens,
    guards_text,
    metric_change,
    node_note,
    objective_labels,
    printable,
    short_reason,
    token_totals,
    totals_text,
    values_text,
)

# ---------------------------------------------------------------------------------------------
# Terminal


def step_line(journal: Journal, node: Node, steps: int, elapsed: float) -> str:
    """One terminal line for a finished step, e.g.

    ``step 3/20 improve <- 2  mean=0.00123  best=0.0011 (-12.3%)  4.1s  1.2k tok``

    A buggy node's reason is a line of the candidate's error output: escaped (printable),
    as the whole line is, so that it cannot move the cursor or retitle the window.
    """
    head = f"step {node.step}/{steps} {node.operator}"
    if node.parent is not None:
        head += f" <- {node.parent}"
    parts = [head]
    if node.is_good:
        parts.append(values_text(journal, node))
        note = node_note(node)  # e.g. "improvement within noise": why it is not the best
        if note:
            parts.append(f"({note})")
    elif node.duplicate_of is not None:
        parts.append(f"DUPLICATE of node {node.duplicate_of}: not run")
    else:
        reason = short_reason(node.error)
        parts.append(f"{node.status.upper()}: {reason}" if reason else node.status.upper())
    # While the run is live the journal's best is the credible one (noise-checked).
    live = journal.nodes and journal.nodes[-1].id == node.id and journal.best is not None
    best = journal.best if live else best_so_far(journal, node.id)
    if best is not None and node.operator != "baseline":
        parts.append(best_text(journal, best))
    parts.append(fmt_seconds(elapsed))
    tokens, _ = token_totals(node)
    if tokens:
        parts.append(f"{fmt_tokens(tokens)} tok")
    return printable("  ".join(parts))


def display_path(path: Path, rootdir: Path) -> str:
    try:
        return path.resolve().relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        return str(path)


def summary_lines(
    journal: Journal,
    run_dir: Path,
    rootdir: Path,
    *,
    applied: bool,
    patch: Path | None,
    resume_hint: str,
    already_best: bool = False,
    put_back: bool = False,
) -> list[str]:
    """The lines for pytest's terminal summary, one block per target (one journal).

    ``put_back``: the best was written, then the final check failed and the file was put
    back: its patch is not offered as something to apply, nor is a best whose improvement the
    confirmation did not bear out.

    ``already_best``: the target holds the best, written when a resumed run first finished.

    Each line is escaped (printable): the outcome may quote a proposer's or a provider's text.
    """
    best = journal.best if _improved(journal) else None
    symbol = f", only {journal.symbol} in it" if journal.symbol else ""
    lines = [f"{journal.targets_text} ({journal.module}{symbol}), run {journal.run_id}"]
    lines += _objective_lines(journal, best)
    lines += _best_lines(best)
    if journal.outcome:
        lines.append(f"  {journal.outcome}")
    lines.append("  " + totals_text(journal))
    if guards_text(journal):
        lines.append("  " + guards_text(journal))
    lines.append("  " + _target_text(journal, applied, already_best, put_back))
    lines.append(f"  run dir: {display_path(run_dir, rootdir)}")
    if patch is not None:
        patch_text = display_path(patch, rootdir)
        lines.append(f"  patch: {patch_text}")
        unconfirmed = best is not None and (best.confirmed or {}).get("confirmed") is False
        if not applied and best is not None and not (already_best or put_back or unconfirmed):
            lines.append(f"  apply it: git apply {patch_text}")
    report, tree = (
        display_path(run_dir / "report.md", rootdir),
        display_path(run_dir / "tree.html", rootdir),
    )
    lines.append(f"  report: {report}, {tree}")
    if resume_hint:  # a finished run is continued by asking for more steps
        lines.append(f"  {'more steps' if journal.finished else 'resume'}: {resume_hint}")
    return [printable(line) for line in lines]


def _improved(journal: Journal) -> bool:
    best = journal.best
    return best is not None and best.id != journal.root.id


def _objective_lines(journal: Journal, best: Node | None) -> list[str]:
    """Each objective's baseline, and its best with the change when a candidate won."""
    lines = []
    labels = objective_labels(journal)
    for objective in journal.objectives:
        nodeid = objective["nodeid"]
        direction = "higher is better" if objective["maximize"] else "lower is better"
        metric = objective["metric"]
        text = (f"  {labels[nodeid]} ({direction}): baseline "
                f"{fmt_metric(journal.root.metrics.get(nodeid), metric)}")
        if best is not None:
            change = fmt_change(metric_change(journal, best, nodeid))
            text += f" -> best {fmt_metric(best.metrics.get(nodeid), metric)} ({change})"
        lines.append(text)
    return lines


def _best_lines(best: Node | None) -> list[str]:
    if best is None:
        return ["  no candidate beat the baseline"]
    lines = [f"  best: node #{best.id} ({best.operator}, step {best.step})"]
    if best.confirmed:
        lines.append(f"  {confirmed_text(best.confirmed)}")
    return lines


def _target_text(journal: Journal, applied: bool, already_best: bool, put_back: bool) -> str:
    """What became of the target file."""
    if already_best:
        return (f"target: {journal.targets_text} already holds the best (written when this run "
                "first finished)")
    if put_back:
        return (f"target: {journal.targets_text} written, then put back as it was: the final check "
                "failed")
    return f"target: {journal.targets_text} {'written' if applied else 'left unchanged'}"
