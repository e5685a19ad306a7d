"""The prompts an LLM proposer sends, after AIDE's structure, for optimizing against tests.

AIDE's prompts have an introduction (the role), the task description, a memory of earlier
attempts, the operator's instructions (draft, improve, debug) and a response format. Here
the task is a module measured by pytest tests: the model sees the target's source, the
marked tests' source (what is measured and what must keep passing), each metric with its
direction, baseline and best so far, and the user's instructions.

With a function or class target (``request.symbol``) the model sees that definition in full
and the rest of the module as a skeleton (imports, constants, the other definitions'
signatures and docstrings), and answers with the definition alone: a prompt the size of the
function, not of the module.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_aide import symbols
from pytest_aide.journal import Node
from pytest_aide.metrics import BENCHMARK_STATS
from pytest_aide.proposers.base import ObjectiveInfo, ProposalRequest, TargetFile
from pytest_aide.sources import Sources

ROLE = (
    "You are an expert Python performance engineer. You rewrite one module of a project so "
    "that a metric measured by its pytest tests gets better, while every one of those tests "
    "keeps passing. You answer with a short plan and then the code, nothing else."
)
#: The role when some metric is not a timing (accuracy, a score): a performance engineer's
#: instincts would chase speed there; and such a module is often text a model reads.
GENERAL_ROLE = (
    "You are an expert Python engineer. You rewrite one module of a project so that a "
    "metric measured by its pytest tests gets better, while every one of those tests keeps "
    "passing. When the module holds text that a model reads (a prompt template, "
    "instructions, worked examples), that text is yours to rewrite. You answer with a short "
    "plan and then the code, nothing else."
)

#: Above this many lines, the reply format suggests edit blocks instead of the whole module.
LARGE_MODULE_LINES = 300
MEMORY_NODES = 30
PLAN_CHARS = 400
ERROR_HEAD_CHARS = 1500
ERROR_TAIL_CHARS = 4500

GUIDELINES = [
    "Keep the module's public interface exactly as it is (names, signatures, return types, "
    "side effects the tests rely on): the tests import it.",
    "The code must stay correct for every input, not only the tests' inputs: do not detect "
    "or special-case the tests, do not read files or the environment to find them.",
    "Use only the standard library and packages the module or its tests already import.",
]
#: The last guideline, by target: a whole module, or one definition in it.
MODULE_GUIDELINE = (
    "The candidate replaces the whole file: keep every import, helper and definition that "
    "is still used."
)
SYMBOL_GUIDELINE = (
    "Only `{symbol}` may change: the rest of the module stays exactly as it is (a reply that "
    "changes anything outside it is rejected). Put any new helper or import inside the "
    "definition."
)

OPERATOR_INSTRUCTIONS = {
    "draft": [
        "Write a new version of {what} that takes a distinct approach from the original "
        "(a different algorithm, data structure, vectorization or library call), not a small "
        "tweak of it.",
        "Take the Memory section into account: do not repeat an approach that was already "
        "tried.",
        "Keep this first design reasonably simple; it will be improved later.",
        "The plan should be 3-5 sentences.",
    ],
    "improve": [
        "Propose ONE specific, actionable improvement to the current code above.",
        "The change must be atomic, so that its effect on the metric can be measured on its "
        "own.",
        "Take the Memory section into account: build on what worked and avoid what failed.",
        "The plan should be 3-5 sentences.",
    ],
    "debug": [
        "The current code above failed (the output is shown). Fix the cause of the failure.",
        "Keep the approach of the current code when it is sound; change only what is needed.",
        "The plan should be 3-5 sentences that explain the cause and the fix.",
    ],
}

NO_CODE_AGAIN = (
    "Your reply contained no usable code. Reply again: a short plan, then ONE fenced "
    "```python block holding the complete module (or SEARCH/REPLACE edit blocks as described)."
)

TRUNCATED_AGAIN = (
    "Your previous reply was cut off at the output token limit. Reply again, much shorter: "
    "a plan of at most 3 sentences, then only SEARCH/REPLACE edit blocks that change the "
    "lines that need to change. Do not repeat the whole module."
)

FILES_GUIDELINE = (
    "The files change together: answer for each file you change under its own heading; a "
    "file you leave out stays as it is. A file's code replaces the whole file (or, where only "
    "a definition is the target, that definition): keep every import, helper and definition "
    "that is still used."
)
NO_CODE_AGAIN_FILES = (
    "Your reply contained no usable code. Reply again: a short plan, then for each file you "
    "change a heading line `### path` followed by ONE fenced ```python block (or "
    "SEARCH/REPLACE edit blocks for that file), as described."
)

NO_CODE_AGAIN_SYMBOL = (
    "Your reply contained no usable code. Reply again: a short plan, then ONE fenced "
    "```python block holding the complete new definition of `{symbol}` (or SEARCH/REPLACE "
    "edit blocks inside it, as described)."
)

NO_CHANGES = "No changes needed."


@dataclass
class Prompt:
    system: str
    user: str


def build_prompt(request: ProposalRequest) -> Prompt:
    """The system and user messages that ask for one candidate."""
    operator = request.operator if request.operator in OPERATOR_INSTRUCTIONS else "improve"
    sections = [
        task_section(request),
        profile_section(request) if operator != "debug" else "",
        memory_section(request),
        code_section(request, operator),
        instructions_section(operator, request.symbol, files=bool(request.also)),
        files_reply_format(request.files) if request.also else
        reply_format(request.parent.code, request.symbol),
    ]
    return Prompt(system=role(request.objectives), user="\n\n".join(s for s in sections if s))


def role(objectives: list[ObjectiveInfo]) -> str:
    """The performance engineer for timings; a general one when any metric is something else."""
    timed = all(o.metric in BENCHMARK_STATS for o in objectives)
    return ROLE if timed else GENERAL_ROLE


def task_section(request: ProposalRequest) -> str:
    parts = [
        "# Task",
        f"{_task_line(request)} Its marked tests measure the metrics below; a candidate "
        "counts only if all the tests shown pass.",
        "",
        "## Metrics",
        *[objective_line(o) for o in request.objectives],
    ]
    if request.instructions.strip():
        parts += ["", "## Instructions from the user", request.instructions.strip()]
    parts += ["", "## Tests (read-only: they measure the candidate and must keep passing)"]
    for path, source in request.test_sources.items():
        parts += [f"### {path}", fenced(source)]
    return "\n".join(parts)


def _task_line(request: ProposalRequest) -> str:
    if request.also:
        named = ", ".join(f"`{f.symbol}` in `{f.path}`" if f.symbol else f"`{f.path}`"
                          for f in request.files)
        modules = ", ".join(f"`{f.module}`" for f in request.files)
        return (f"Optimize these files together: {named} (imported as {modules}); a "
                "speedup may need changes to more than one of them.")
    what = f"`{request.symbol}` in the module" if request.symbol else "the module"
    return f"Optimize {what} `{request.target_path}` (imported as `{request.module}`)."


def profile_section(request: ProposalRequest) -> str:
    """Where the benchmarked calls spent their time on the original: the target's hottest
    functions, so that the model works where the time goes."""
    if not request.profile:
        return ""
    lines = ["# Where the time goes",
             "Each benchmarked call of the original code, profiled once (cProfile): the "
             "module's functions that take most of its time, as a share of the call's time, "
             "in their own code and with what they call."]
    for nodeid, spots in request.profile.items():
        lines.append(f"## `{nodeid}`")
        lines += [f"- `{spot.function}` (line {spot.line}): {spot.own:.0%} own, "
                  f"{spot.total:.0%} with its callees, {spot.calls:,} call"
                  f"{'' if spot.calls == 1 else 's'}" for spot in spots]
    return "\n".join(lines)


def objective_line(objective: ObjectiveInfo) -> str:
    direction = "higher is better" if objective.maximize else "lower is better"
    values = [f"baseline {fmt(objective.baseline)}"]
    if objective.best is not None:
        values.append(f"best so far {fmt(objective.best)}")
    return f"- `{objective.nodeid}`: metric `{objective.metric}` ({direction}); {', '.join(values)}"


def memory_section(request: ProposalRequest) -> str:
    """AIDE's journal summary: what earlier nodes tried, and how each one did."""
    nodes = list(request.memory)
    if not nodes:
        return ""
    names = {o.nodeid: o.metric for o in request.objectives}
    lines = ["# Memory", "Earlier attempts, oldest first:"]
    if len(nodes) > MEMORY_NODES:
        lines.append(f"({len(nodes) - MEMORY_NODES} older attempts omitted)")
        nodes = nodes[-MEMORY_NODES:]
    for node in nodes:
        lines.append(memory_line(node, names))
    return "\n".join(lines)


def memory_line(node: Node, metric_names: dict[str, str]) -> str:
    origin = f"{node.operator} of node {node.parent}" if node.parent is not None else node.operator
    plan = " ".join(node.plan.split())
    if len(plan) > PLAN_CHARS:
        plan = plan[:PLAN_CHARS].rstrip() + " ..."
    head = f"- node {node.id} ({origin}): {plan or '(no plan)'}"
    if node.is_good:
        metrics = ", ".join(
            f"{metric_names.get(nodeid, nodeid)}={fmt(value)}"
            for nodeid, value in node.metrics.items()
        )
        return f"{head}\n  result: {metrics or 'passed'}"
    reason = first_line(node.error) or "failed"
    return f"{head}\n  result: {node.status}: {reason}"


def code_section(request: ProposalRequest, operator: str) -> str:
    parent = request.parent
    if operator == "draft":
        title = "# Original code"
    elif operator == "debug":
        title = f"# Current code (node {parent.id}, buggy)"
    else:
        title = f"# Current code (node {parent.id})"
    if request.also:
        parts = [title, *files_code(Sources.decode(parent.code, [f.path for f in request.files]),
                                    request.files)]
    elif request.symbol:
        parts = symbol_code(parent.code, request.symbol, title, request.target_path)
    else:
        parts = [title, fenced(parent.code)]
    if operator == "debug":
        parts += ["## Its failure output (trimmed)", fenced(trim_output(request.error_output), "")]
    return "\n".join(parts)


def symbol_code(code: str, symbol: str, title: str, path: str) -> list[str]:
    """The target's definition in full, then the rest of its module as a skeleton."""
    return [
        f"{title}: `{symbol}`, in full",
        fenced(symbols.definition(code, symbol)),
        f"## The rest of `{path}` (context only, not to be changed: imports, constants, and "
        "the other definitions' signatures and docstrings, bodies left out)",
        fenced(symbols.skeleton(code, symbol)),
    ]


def files_code(sources: Sources, files: list[TargetFile]) -> list[str]:
    """Each target file under a heading of its path: in full, or (a function or class
    target) that definition in full and the rest of the file as a skeleton."""
    parts = []
    for file in files:
        text = sources.text(file.path)
        if file.symbol and symbols.find(text, file.symbol) is not None:
            parts += symbol_code(text, file.symbol, f"## {file.path}", file.path)
        else:
            parts += [f"## {file.path}", fenced(text)]
    return parts


def instructions_section(operator: str, symbol: str = "", files: bool = False) -> str:
    what = "the files" if files else f"`{symbol}`" if symbol else "the module"
    last = (FILES_GUIDELINE if files else SYMBOL_GUIDELINE.format(symbol=symbol) if symbol
            else MODULE_GUIDELINE)
    items = [item.format(what=what) for item in OPERATOR_INSTRUCTIONS[operator]]
    return "\n".join(["# Instructions", *[f"- {item}" for item in [*items, *GUIDELINES, last]]])


def reply_format(parent_code: str, symbol: str = "") -> str:
    if symbol:
        large = symbols.definition(parent_code, symbol).count("\n") > LARGE_MODULE_LINES
        whole = (f"the complete new definition of `{symbol}` (its decorators, its def or "
                 "class line and every line of its body; nothing else of the module)")
        where = f"the definition of `{symbol}` shown above (nothing outside it)"
    else:
        large = parent_code.count("\n") + 1 > LARGE_MODULE_LINES
        whole = "the complete new module (every line of it)"
        where = "the current code shown above"
    lines = [
        "# Reply format",
        "First a short plan in plain text. Then the code, in ONE of two forms:",
        f"1. ONE fenced ```python block holding {whole}.",
        f"2. One or more edit blocks against {where}, each like this:",
        "<<<<<<< SEARCH",
        "(lines copied exactly from the current code)",
        "=======",
        "(the lines that replace them)",
        ">>>>>>> REPLACE",
        "Each SEARCH section must match the current code exactly and only once; keep it short "
        "but unique. Edits are applied in order.",
    ]
    if large:
        lines.append(f"{'It' if symbol else 'The module'} is large: prefer edit blocks.")
    lines.append("Write nothing after the code.")
    return "\n".join(lines)


def files_reply_format(files: list[TargetFile]) -> str:
    """The reply format with several target files: one section per file it changes."""
    lines = [
        "# Reply format",
        "First a short plan in plain text. Then, for each file you change, a heading line "
        "with its path, exactly as shown:",
        *[f"### {file.path}" for file in files],
        "followed by its code in ONE of two forms:",
        "1. ONE fenced ```python block holding the complete new file (where the target is one "
        "definition of the file: the complete new definition, nothing else of the file).",
        "2. One or more edit blocks against that file's code shown above, each like this:",
        "<<<<<<< SEARCH",
        "(lines copied exactly from the current code)",
        "=======",
        "(the lines that replace them)",
        ">>>>>>> REPLACE",
        "Leave out the files you do not change. Write nothing after the code.",
    ]
    return "\n".join(lines)


def critique_prompt(request: ProposalRequest, plan: str, code: str) -> Prompt:
    """The first reflection call: review the candidate, give numbered instructions, no code."""
    shown = symbols.definition(code, request.symbol) if request.symbol else code
    user = "\n\n".join(
        [
            task_section(request),
            "# Candidate to review\n## Its plan\n" + (plan or "(none)") + "\n## Its code\n"
            + fenced(shown),
            "# Your job\n"
            "Review the candidate for mistakes that would make a test fail, raise an error, "
            "change the module's behaviour or interface, or contradict its plan.\n"
            "Rules:\n"
            "- DO NOT WRITE ANY CODE in your reply.\n"
            "- Do not suggest new ideas or big changes; only fixes for mistakes in this code.\n"
            "- Reply with a 'Review' section (the mistakes, briefly) and an 'Instructions' "
            "section: a numbered list, one small fix per number.\n"
            f"- If the candidate is fine, reply with exactly this sentence: {NO_CHANGES}",
        ]
    )
    return Prompt(system="You are a careful senior Python reviewer.", user=user)


def edit_prompt(code: str, critique: str, symbol: str = "") -> Prompt:
    """The second reflection call: apply only the reviewer's numbered instructions."""
    shown = symbols.definition(code, symbol) if symbol else code
    user = "\n\n".join(
        [
            "# Code\n" + fenced(shown),
            "# Edit instructions from the review\n" + critique.strip(),
            "# Your job\n"
            "Apply ONLY the numbered edit instructions to the code. Do not change any other "
            "part of it, do not reformat or restructure it. If the instructions contain code, "
            "ignore that code and follow the numbered text.",
            reply_format(code, symbol),
        ]
    )
    return Prompt(system="You are a precise code editor.", user=user)


def fenced(text: str, lang: str = "python") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def trim_output(output: str) -> str:
    output = output.strip()
    if len(output) <= ERROR_HEAD_CHARS + ERROR_TAIL_CHARS:
        return output or "(no output)"
    omitted = len(output) - ERROR_HEAD_CHARS - ERROR_TAIL_CHARS
    return (
        output[:ERROR_HEAD_CHARS]
        + f"\n... ({omitted} characters omitted) ...\n"
        + output[-ERROR_TAIL_CHARS:]
    )


def first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"
