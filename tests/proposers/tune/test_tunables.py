"""What the tuner may change in a module, and how it writes new values."""

from __future__ import annotations

import pytest

from pytest_aide.proposers.tune.tunables import Tunable, apply_values, find_tunables, format_value


def by_name(source: str) -> dict[str, Tunable]:
    return {t.name: t for t in find_tunables(source)}


def literal_text(source: str, tunable: Tunable) -> str:
    return source[tunable.start : tunable.end]


# --- discovery -------------------------------------------------------------------------


def test_module_constants_of_each_kind():
    source = (
        "BLOCK_SIZE = 1024\nEPS: float = 1e-6\nOFFSET = -3\nUSE_CACHE = True\n"
        "lower = 5\nNAME = 'x'\nPAIR = (1, 2)\n_PRIVATE = 7\n"
    )
    found = by_name(source)
    assert list(found) == ["BLOCK_SIZE", "EPS", "OFFSET", "USE_CACHE", "_PRIVATE"]
    assert (found["BLOCK_SIZE"].kind, found["BLOCK_SIZE"].value) == ("int", 1024)
    assert (found["EPS"].kind, found["EPS"].value) == ("float", 1e-6)
    assert literal_text(source, found["EPS"]) == "1e-6"
    assert (found["OFFSET"].value, literal_text(source, found["OFFSET"])) == (-3, "-3")
    assert (found["USE_CACHE"].kind, found["USE_CACHE"].choices) == ("bool", (False, True))


def test_only_module_level_constants_are_found_without_a_hint():
    source = "def f():\n    BLOCK = 64\n    return BLOCK\n\nclass C:\n    SIZE = 8\n"
    assert find_tunables(source) == []


def test_numeric_keyword_arguments_anywhere():
    source = (
        "from sklearn.ensemble import RandomForestClassifier\n"
        "\n"
        "def fit(x, y):\n"
        "    model = RandomForestClassifier(n_estimators=100, max_depth=8)\n"
        "    opt = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
        "    kernel[grid](x, BLOCK_SIZE=1024, num_warps=4)\n"
        "    return model\n"
    )
    found = by_name(source)
    assert list(found) == [
        "RandomForestClassifier.n_estimators@4",
        "RandomForestClassifier.max_depth@4",
        "Adam.lr@5",
        "kernel.BLOCK_SIZE@6",
        "kernel.num_warps@6",
    ]
    assert found["Adam.lr@5"].value == 1e-3
    assert literal_text(source, found["kernel.num_warps@6"]) == "4"


@pytest.mark.parametrize(
    "line",
    [
        "SEED = 1",
        "RANDOM_STATE = 3",
        "DATA_SEED = 3",
        "f(seed=1)",
        "f(random_state=0)",
        "f(shuffle_seed=4)",
        "f(n=3)  # aide: skip",
        "N = 3  # aide: fixed",
        "f(axis=1)",
        "f(verbose=2)",
        "f(shuffle=True)",
        "f(name='x')",
        "f(n=a)",
        "f(n=2 ** 10)",
    ],
)
def test_excluded(line):
    assert find_tunables(line + "\n") == []


def test_repeated_names_get_suffixes():
    found = find_tunables("y = g(a=1) + g(a=2)\n")
    assert [t.name for t in found] == ["g.a@1", "g.a@1#2"]


# --- default search spaces -------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "kind", "low", "high", "log", "pow2"),
    [
        ("64", "int", 8, 512, False, True),
        ("2", "int", 1, 16, False, True),
        ("100", "int", 25, 400, True, False),
        ("3", "int", 1, 12, True, False),
        ("0", "int", 0, 8, False, False),
        ("-3", "int", -12, -1, False, False),
        ("1e-3", "float", 1e-4, 1e-2, True, False),
        ("0.0", "float", 0.0, 1.0, False, False),
        ("-0.5", "float", -5.0, -0.05, False, False),
    ],
)
def test_default_spaces(literal, kind, low, high, log, pow2):
    (tunable,) = find_tunables(f"X = {literal}\n")
    assert (tunable.kind, tunable.log, tunable.pow2) == (kind, log, pow2)
    assert tunable.low == pytest.approx(low)
    assert tunable.high == pytest.approx(high)
    assert tunable.contains(tunable.value)


# --- hints -----------------------------------------------------------------------------


def test_range_hints():
    source = (
        "TILE = 64  # aide: 16..1024 pow2\n"
        "LR = 1e-3  # aide: 1e-5..1e-1 log\n"
        "N = 10  # aide: 1..64\n"
        "F = 0.5  # aide: 0..1 float\n"
    )
    found = by_name(source)
    assert (found["TILE"].low, found["TILE"].high, found["TILE"].pow2) == (16, 1024, True)
    assert (found["LR"].kind, found["LR"].low, found["LR"].high) == ("float", 1e-5, 1e-1)
    assert found["LR"].log
    assert (found["N"].kind, found["N"].low, found["N"].high, found["N"].log) == (
        "int",
        1,
        64,
        False,
    )
    assert (found["F"].kind, found["F"].low, found["F"].high) == ("float", 0, 1)


def test_choices_hint():
    source = "WARPS = 4  # aide: choices 2 4 8\nKEEP = True  # aide: choices True False\n"
    found = by_name(source)
    assert (found["WARPS"].kind, found["WARPS"].choices) == ("choice", (2, 4, 8))
    assert found["KEEP"].choices == (True, False)


def test_a_hint_opts_in_literals_that_are_not_tunable_by_default():
    source = (
        "def f():\n"
        "    chunk = 8  # aide: 1..64\n"
        "    model = Tree(criterion='gini')  # aide: choices gini entropy\n"
        "    return g(axis=1)  # aide: choices 0 1\n"
    )
    found = by_name(source)
    assert list(found) == ["chunk", "Tree.criterion@3", "g.axis@4"]
    assert found["Tree.criterion@3"].choices == ("gini", "entropy")
    rewritten = apply_values(source, list(found.values()), {"Tree.criterion@3": "entropy"})
    assert "Tree(criterion='entropy')" in rewritten


@pytest.mark.parametrize(
    ("hint", "why"),
    [
        ("", "empty"),
        ("bigger please", "not a range"),
        ("16..", "not a number"),
        ("a..b", "not a number"),
        ("64..16", "smaller"),
        ("1..64 pow3", "unknown flag"),
        ("0..1 log", "LOW > 0"),
        ("3..10 pow2", "powers of two"),
        ("0.5..8.0 pow2", "int range"),
        ("choices", "at least one"),
        ("choices 1 fast", "not a number"),
    ],
)
def test_malformed_hints_name_the_line_and_the_grammar(hint, why):
    source = f"A = 1\nX = 4  # aide: {hint}\n"
    with pytest.raises(ValueError, match=why) as info:
        find_tunables(source)
    message = str(info.value)
    assert message.startswith("line 2:")
    assert "aide: LOW..HIGH" in message


def test_a_hint_on_a_line_with_nothing_to_tune_is_an_error():
    with pytest.raises(ValueError, match=r"line 2: .*no tunable literal"):
        find_tunables("A = 1\nprint(A)  # aide: 1..8\n")


def test_a_hint_inside_a_string_is_not_a_hint():
    assert find_tunables("TEXT = '# aide: nonsense'\n") == []


# --- rewriting -------------------------------------------------------------------------

SOURCE = (
    '"""Kernel settings — größe (non-ASCII on purpose)."""\n'
    "import math\n"
    "\n"
    "BLOCK_SIZE   =  1024   # tile width; keep it a power of two\n"
    'NAME = "größe ü"; WARPS = 4  # aide: choices 2 4 8\n'
    "EPS: float = 1e-6\n"
    "OFFSET = -3\n"
    "\n"
    "\n"
    "def run(x):\n"
    "    return launch(x,   lr = 1e-3,  # learning rate — ü\n"
    "                  n_estimators=100)\n"
)


def test_rewriting_changes_only_the_literals():
    tunables = find_tunables(SOURCE)
    values = {
        "BLOCK_SIZE": 256,
        "WARPS": 8,
        "EPS": 1e-05,
        "OFFSET": -7,
        "launch.lr@11": 0.003,
        "launch.n_estimators@12": 250,
    }
    assert sorted(values) == sorted(t.name for t in tunables)
    rewritten = apply_values(SOURCE, tunables, values)
    expected = (
        SOURCE.replace("=  1024 ", "=  256 ")
        .replace("WARPS = 4", "WARPS = 8")
        .replace("= 1e-6", "= 1e-05")
        .replace("= -3", "= -7")
        .replace("lr = 1e-3", "lr = 0.003")
        .replace("=100)", "=250)")
    )
    assert rewritten == expected
    # the rewritten module is read back the same way, at the new values
    assert {t.name: t.value for t in find_tunables(rewritten)} == values


def test_rewriting_with_no_values_is_the_identity():
    assert apply_values(SOURCE, find_tunables(SOURCE), {}) == SOURCE


def test_spans_are_string_indices_on_non_ascii_and_crlf_lines():
    source = "A = 'é'; B = 3  # ü\r\nf(x='ß', c=2.5)\r\n"
    found = by_name(source)
    assert literal_text(source, found["B"]) == "3"
    assert literal_text(source, found["f.c@2"]) == "2.5"
    rewritten = apply_values(source, list(found.values()), {"B": 5, "f.c@2": 0.25})
    assert rewritten == "A = 'é'; B = 5  # ü\r\nf(x='ß', c=0.25)\r\n"


def test_a_byte_order_mark_is_kept():
    source = "\ufeffX = 4\n"
    rewritten = apply_values(source, find_tunables(source), {"X": 8})
    assert rewritten == "\ufeffX = 8\n"


def test_unknown_names_are_refused():
    with pytest.raises(KeyError, match="NOPE"):
        apply_values("X = 1\n", find_tunables("X = 1\n"), {"NOPE": 2})


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (0.001, "float", "0.001"),
        (1e-05, "float", "1e-05"),
        (2.5, "float", "2.5"),
        (100.0, "float", "100.0"),
        (8.0, "int", "8"),
        (64, "int", "64"),
        (-3, "int", "-3"),
        (True, "bool", "True"),
        (False, "bool", "False"),
    ],
)
def test_format_value(value, kind, text):
    assert format_value(value, kind) == text


def test_format_value_refuses_values_without_a_literal():
    with pytest.raises(ValueError):
        format_value(float("nan"), "float")
