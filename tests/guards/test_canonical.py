"""Canonical forms: answers compared without trusting the objects that carry them."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_aide.guards.canonical import Tolerance, compare, form, render


class LyingInt(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


class Deferred:
    """Does its work only when compared (after the timed rounds)."""

    def __init__(self, work):
        self.work = work

    def __eq__(self, other: object) -> bool:
        return self.work() == other


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self) -> None:
        self.a, self.b = 1, [2.0]


class SneakyDict:
    @property
    def __dict__(self):  # reading it would run this code
        raise AssertionError("the canonical form called the object's own code")


def test_a_result_that_lies_about_equality_is_not_the_original_answer() -> None:
    assert LyingInt(5) == 6  # what a test's own == would believe
    assert "LyingInt" in compare(form(5), form(LyingInt(5)))


def test_work_deferred_to_the_comparison_is_not_the_answer() -> None:
    proxy = Deferred(lambda: 42)
    assert proxy == 42
    assert "Deferred" in compare(form(42), form(proxy))


def test_floats_and_arrays_compare_within_the_tolerance() -> None:
    assert compare(form([0.1 + 0.2, 1.0]), form([0.3, 1.0])) == ""
    assert compare(form(1.0), form(1.001)) != ""
    assert compare(form(1.0), form(1.001), Tolerance(rtol=1e-2)) == ""
    a = np.linspace(0, 1, 50)
    assert compare(form(a), form(a[::-1][::-1] + 1e-12)) == ""
    assert "flat[3]" in compare(form(a), form(np.where(np.arange(50) == 3, 9.0, a)))
    assert "<f4" in compare(form(a), form(a.astype(np.float32)))
    assert "shape" in compare(form(a), form(a.reshape(5, 10)))
    assert compare(form(np.float64(2.5)), form(2.5)) != ""  # the exact type counts


def test_the_default_tolerance_follows_the_float_type() -> None:
    # a float32 kernel that sums in another order: off in the 7th digit, well within 1e-5
    exact = np.full(4, 0.057440634816884995, dtype=np.float32)
    fused = np.full(4, 0.057440564036369324, dtype=np.float32)
    assert compare(form(exact), form(fused)) == ""
    # in float64 the same relative difference (1.2e-6, at a scale where atol is no help) is one
    scale = np.float64(1000)
    assert compare(form(exact.astype(np.float64) * scale),
                   form(fused.astype(np.float64) * scale)) != ""
    assert compare(form(exact), form(fused), Tolerance(atol=0.0, rtol=1e-9)) != ""
    half = np.array([1.0, 2.0], dtype=np.float16)
    assert compare(form(half), form(half * np.float16(1.0005))) == ""


def test_integers_and_strings_compare_exactly() -> None:
    assert compare(form(10**20), form(10**20 + 1)) != ""
    assert compare(form("oxen"), form("oxs")) == "the value is 'oxs', the original's 'oxen'"
    assert compare(form(True), form(1)) != ""


def test_containers_are_walked() -> None:
    assert compare(form({"a": [1, 2]}), form({"a": [1, 3]})) == \
        "the value['a'][1] is 3, the original's 2"
    assert "items" in compare(form([1, 2]), form([1, 2, 3]))
    assert compare(form({3, 1, 2}), form({1, 2, 3})) == ""
    assert compare(form((1, 2)), form([1, 2])) != ""


def test_objects_by_exact_class_and_attributes_without_their_code() -> None:
    assert form(Slotted())[2] == [["a", ["int", 1]], ["b", ["list", [["float", 2.0]], 1]]]
    sneaky = form(SneakyDict())
    assert sneaky[0] == "object" and "not the interpreter's" in sneaky[2]
    assert form(ValueError("x")) == ["exception", "builtins.ValueError"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.0, 1 + 2j, b"\x00", None])
def test_odd_values_have_forms_that_compare_equal_to_themselves(value) -> None:
    assert compare(form(value), form(value)) == ""
    assert render(form(value))
