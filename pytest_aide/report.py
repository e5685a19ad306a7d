"""What a person sees of a run: terminal lines, the summary, ``report.md`` and ``tree.html``.

Everything here is a pure function of the journal (plus paths and the code to diff), so the
same report can be rebuilt from a ``journal.json`` long after the run. The HTML page lives in
:mod:`pytest_aide.report_html`.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from pytest_aide.artifacts import unified_patch
from pytest_aide.journal import BUGGY, TAMPERED, Journal, Node, write_atomic

#: Several objectives are listed one by one up to this many; beyond, the score is shown.
MAX_LISTED_OBJECTIVES = 3
REASON_WIDTH = 60


# ---------------------------------------------------------------------------------------------
# Small formatters


def fmt_value(value: float | None) -> str:
    """A metric value, short but with enough digits to tell candidates apart."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-4):
        return f"{value:.3e}"
    return f"{value:.4g}"


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


def short_reason(error: str, width: int = REASON_WIDTH) -> str:
    """The line of an error output that says what went wrong, cut to ``width``.

    Tracebacks and pytest summaries put the cause near the end, so the last line that
    names an error wins; otherwise the first non-empty line.
    """
    lines = [line.strip(" =_-\t") for line in error.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    named = [line for line in lines if re.search(r"Error|Exception|FAILED|Timeout|timed out", line)]
    reason = named[-1] if named else lines[0]
    failed = re.match(r"FAILED (\S+) - (.*)", reason)
    if failed:  # pytest's short summary: keep the test's name and the message
        reason = f"{failed[1].split('::')[-1]}: {failed[2]}"
    return reason if len(reason) <= width else reason[: width - 3] + "..."


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


def _lists_each(journal: Journal) -> bool:
    return len(journal.objectives) <= MAX_LISTED_OBJECTIVES


def _values_text(journal: Journal, node: Node) -> str:
    labels = objective_labels(journal)
    if len(journal.objectives) == 1 or _lists_each(journal):
        return " ".join(f"{labels[n]}={fmt_value(node.metrics.get(n))}" for n in labels)
    return f"score={fmt_value(node.objective)}"


def _best_text(journal: Journal, best: Node) -> str:
    labels = objective_labels(journal)
    if len(labels) == 1:
        (nodeid,) = labels
        change = metric_change(journal, best, nodeid)
        suffix = f" ({fmt_change(change)})" if change is not None else ""
        if best.id == journal.root.id:
            suffix = " (baseline)"
        return f"best={fmt_value(best.metrics.get(nodeid))}{suffix}"
    if _lists_each(journal):
        changes = " ".join(
            f"{label} {fmt_change(metric_change(journal, best, n))}" for n, label in labels.items()
        )
        return f"best: {changes}"
    return f"best score={fmt_value(best.objective)}"


def _tokens(node_or_journal: Node | Journal) -> tuple[int, float | None]:
    if isinstance(node_or_journal, Journal):
        usage = node_or_journal.total_usage()
    else:
        usage = node_or_journal.usage
    return usage.input_tokens + usage.output_tokens, usage.cost_usd


def status_counts(journal: Journal, *, skip_baseline: bool = False) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in journal.nodes:
        if skip_baseline and node.operator == "baseline":
            continue
        counts[node.status] = counts.get(node.status, 0) + 1
    return counts


def wall_seconds(journal: Journal) -> float:
    """From the first node's start to the last node's end; the sum of step times if unknown."""
    timed = [n for n in journal.nodes if n.started > 0]
    if timed:
        start = min(n.started - n.propose_seconds for n in timed)
        return max(n.started + n.duration for n in timed) - start
    return sum(n.duration + n.propose_seconds for n in journal.nodes)


# ---------------------------------------------------------------------------------------------
# Terminal


def step_line(journal: Journal, node: Node, steps: int, elapsed: float) -> str:
    """One terminal line for a finished step, e.g.

    ``step 3/20 improve <- 2  mean=0.00123  best=0.0011 (-12.3%)  4.1s  1.2k tok``
    """
    head = f"step {node.step}/{steps} {node.operator}"
    if node.parent is not None:
        head += f" <- {node.parent}"
    parts = [head]
    if node.is_good:
        parts.append(_values_text(journal, node))
        if node.remeasured and not node.error:
            parts.append("(measured again next to the best: the machine's speed had changed)")
        if node.error:  # good but not taken as best, e.g. "improvement within noise"
            parts.append(f"({node.error})")
    else:
        reason = short_reason(node.error)
        parts.append(f"{node.status.upper()}: {reason}" if reason else node.status.upper())
    # While the run is live the journal's best is the credible one (noise-checked).
    live = journal.nodes and journal.nodes[-1].id == node.id and journal.best is not None
    best = journal.best if live else best_so_far(journal, node.id)
    if best is not None and node.operator != "baseline":
        parts.append(_best_text(journal, best))
    parts.append(fmt_seconds(elapsed))
    tokens, _ = _tokens(node)
    if tokens:
        parts.append(f"{fmt_tokens(tokens)} tok")
    return "  ".join(parts)


def _display_path(path: Path, rootdir: Path) -> str:
    try:
        return path.resolve().relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        return str(path)


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
    if isinstance(rounds, int):
        return (f"{verdict}: {metric} {change}{interval}, re-measured over {rounds} rounds "
                f"interleaved with the baseline{unsteady}")
    return f"{verdict}: {metric} {change}{interval}, re-measured interleaved with the baseline"


def summary_lines(
    journal: Journal,
    run_dir: Path,
    rootdir: Path,
    *,
    applied: bool,
    patch: Path | None,
    resume_hint: str,
) -> list[str]:
    """The lines for pytest's terminal summary, one block per target (one journal)."""
    root, best = journal.root, journal.best
    improved = best is not None and best.id != root.id
    lines = [f"{journal.target} ({journal.module}), run {journal.run_id}"]
    labels = objective_labels(journal)
    for objective in journal.objectives:
        nodeid = objective["nodeid"]
        direction = "higher is better" if objective["maximize"] else "lower is better"
        text = f"  {labels[nodeid]} ({direction}): baseline {fmt_value(root.metrics.get(nodeid))}"
        if improved:
            change = fmt_change(metric_change(journal, best, nodeid))  # type: ignore[arg-type]
            text += f" -> best {fmt_value(best.metrics.get(nodeid))} ({change})"  # type: ignore[union-attr]
        lines.append(text)
    if improved:
        lines.append(f"  best: node #{best.id} ({best.operator}, step {best.step})")  # type: ignore[union-attr]
        if best.confirmed:  # type: ignore[union-attr]
            lines.append(f"  {confirmed_text(best.confirmed)}")  # type: ignore[union-attr]
    else:
        lines.append("  no candidate beat the baseline")
    if journal.outcome:
        lines.append(f"  {journal.outcome}")
    lines.append("  " + _totals_text(journal))
    lines.append(f"  target: {journal.target} {'written' if applied else 'left unchanged'}")
    lines.append(f"  run dir: {_display_path(run_dir, rootdir)}")
    if patch is not None:
        patch_text = _display_path(patch, rootdir)
        lines.append(f"  patch: {patch_text}")
        if not applied and improved:
            lines.append(f"  apply it: git apply {patch_text}")
    report, tree = (
        _display_path(run_dir / "report.md", rootdir),
        _display_path(run_dir / "tree.html", rootdir),
    )
    lines.append(f"  report: {report}, {tree}")
    if resume_hint:
        lines.append(f"  resume: {resume_hint}")
    return lines


def _totals_text(journal: Journal) -> str:
    counts = status_counts(journal, skip_baseline=True)
    steps = sum(counts.values())
    text = (
        f"{steps} steps: {counts.get('good', 0)} good, {counts.get(BUGGY, 0)} buggy, "
        f"{counts.get(TAMPERED, 0)} tampered; {fmt_seconds(wall_seconds(journal))}"
    )
    tokens, cost = _tokens(journal)
    if tokens:
        text += f"; {fmt_tokens(tokens)} tokens"
    if cost is not None:
        text += f", {fmt_cost(cost)}"
    return text


# ---------------------------------------------------------------------------------------------
# report.md


def unified_diff(before: str, after: str, path: str) -> str:
    """The same diff as ``best.patch``, so the report shows what ``git apply`` takes."""
    return unified_patch(before, after, path)


def _fence(text: str) -> str:
    """A backtick fence longer than any run of backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _node_metrics(journal: Journal, node: Node) -> str:
    if not node.is_good:
        return node.status
    return _values_text(journal, node)


def render_report_md(journal: Journal, original_code: str, best_code: str | None) -> str:
    root, best = journal.root, journal.best
    labels = objective_labels(journal)
    settings = journal.settings
    out = [f"# pytest-aide run `{journal.run_id}`", ""]
    facts = [f"target `{journal.target}` (module `{journal.module}`)"]
    facts += [f"{key} `{settings[key]}`" for key in ("model", "steps", "seed") if key in settings]
    out += ["- " + fact for fact in facts]
    if journal.outcome:
        out.append(f"- {journal.outcome}")
    out += ["- " + _totals_text(journal), ""]

    out += ["## Objectives", "", "| test | metric | direction | baseline | best | change |"]
    out.append("| --- | --- | --- | --- | --- | --- |")
    for objective in journal.objectives:
        nodeid = objective["nodeid"]
        direction = "higher is better" if objective["maximize"] else "lower is better"
        best_value = fmt_value(best.metrics.get(nodeid)) if best else "n/a"
        change = fmt_change(metric_change(journal, best, nodeid)) if best else "n/a"
        out.append(
            f"| `{_cell(nodeid)}` | {labels[nodeid]} | {direction} "
            f"| {fmt_value(root.metrics.get(nodeid))} | {best_value} | {change} |"
        )
    out.append("")
    if best is not None and best.confirmed:
        out += [f"Best {confirmed_text(best.confirmed)}.", ""]

    out += ["## Path to the best", ""]
    if best is None or best.id == root.id:
        out += ["No candidate beat the baseline.", ""]
    else:
        for node in journal.path_to(best.id):
            out.append(
                f"### #{node.id} {node.operator} (step {node.step}): {_node_metrics(journal, node)}"
            )
            out.append("")
            out += [
                f"> {line}" if line else ">" for line in (node.plan or "(no plan)").splitlines()
            ]
            out.append("")
            if not node.is_good:
                out += [f"{node.status}: `{short_reason(node.error, 200)}`", ""]

    out += ["## Best diff", ""]
    diff = unified_diff(original_code, best_code, journal.target) if best_code else ""
    if diff:
        fence = _fence(diff)
        out += [f"{fence}diff", diff.rstrip("\n"), fence, ""]
    else:
        out += ["No change: the original code stays.", ""]

    out += ["## All nodes", ""]
    out.append(
        "| # | step | parent | operator | status | metrics | change | time | tokens | note |"
    )
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for node in journal.nodes:
        out.append(_node_row(journal, node))
    out.append("")
    return "\n".join(out)


def _node_row(journal: Journal, node: Node) -> str:
    parent = "" if node.parent is None else str(node.parent)
    changes = []
    if node.is_good and node.id != journal.root.id:
        labels = objective_labels(journal)
        changes = [fmt_change(metric_change(journal, node, n)) for n in labels]
    tokens, _ = _tokens(node)
    note = short_reason(node.error) if not node.is_good else _cell(node.plan.split("\n")[0][:80])
    mark = " ★" if node.id == journal.best_id else ""
    return (
        f"| {node.id}{mark} | {node.step} | {parent} | {node.operator} | {node.status} "
        f"| {_cell(_node_metrics(journal, node))} | {' '.join(changes)} "
        f"| {fmt_seconds(node.duration)} | {fmt_tokens(tokens) if tokens else ''} "
        f"| {_cell(note)} |"
    )


def write_report_md(
    journal: Journal, run_dir: Path, original_code: str, best_code: str | None
) -> Path:
    """Write ``report.md`` in the run dir; append it to ``$GITHUB_STEP_SUMMARY`` when set."""
    text = render_report_md(journal, original_code, best_code)
    path = run_dir / "report.md"
    write_atomic(path, text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return path


def write_tree_html(journal: Journal, path: Path) -> Path:
    """Write the self-contained search tree page (see :mod:`pytest_aide.report_html`)."""
    from pytest_aide.report_html import render_tree_html

    write_atomic(path, render_tree_html(journal))
    return path
