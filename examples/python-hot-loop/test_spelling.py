"""Tests for spelling: exact agreement with a plain reference on random texts, and speed.

The texts mimic real ones: a vocabulary of random words, and a text drawn from it with a
Zipf-like skew (a few words are very common) and random typos. The reference below is an
independent, deliberately simple implementation; the result must match it exactly (there
is no tolerance for a wrong suggestion, tie-breaking included).
"""

from __future__ import annotations

import random
import string

import pytest
from spelling import correct, edit_distance


def reference_distance(a: str, b: str) -> int:
    """Levenshtein distance by the textbook full-table recurrence."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        table[i][0] = i
    for j in range(len(b) + 1):
        table[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(
                table[i - 1][j] + 1,
                table[i][j - 1] + 1,
                table[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
    return table[len(a)][len(b)]


def reference_correct(words: list[str], vocabulary: list[str]) -> list[str]:
    """For each word, the first vocabulary word with the smallest distance."""
    answers = {}
    for word in set(words):
        distances = [reference_distance(word, v) for v in vocabulary]
        answers[word] = vocabulary[distances.index(min(distances))]
    return [answers[word] for word in words]


def make_text(
    seed: int, vocabulary_size: int, distinct: int, length: int
) -> tuple[list[str], list[str]]:
    """A random vocabulary and a skewed, typo-ridden text of ``length`` words."""
    rng = random.Random(seed)
    letters = "abcdefgh"  # a small alphabet makes near-ties between words common
    vocabulary = list(
        dict.fromkeys(
            "".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(vocabulary_size)
        )
    )
    pool = []
    for _ in range(distinct):
        word = list(rng.choice(vocabulary))
        for _ in range(rng.randint(0, 2)):  # typos: substitute, delete or insert a letter
            position = rng.randrange(len(word) + 1)
            edit = rng.choice("sdi")
            if edit == "s" and position < len(word):
                word[position] = rng.choice(string.ascii_lowercase[:10])
            elif edit == "d" and position < len(word) and len(word) > 1:
                del word[position]
            else:
                word.insert(position, rng.choice(letters))
        pool.append("".join(word))
    weights = [1.0 / (rank + 1) for rank in range(len(pool))]
    return rng.choices(pool, weights=weights, k=length), vocabulary


@pytest.mark.parametrize(
    "a,b,expected",
    [("", "", 0), ("", "abc", 3), ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("ab", "ba", 2)],
)
def test_edit_distance_known_values(a: str, b: str, expected: int) -> None:
    assert edit_distance(a, b) == expected
    assert edit_distance(b, a) == expected


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(
    "vocabulary_size,distinct,length", [(1, 3, 5), (40, 15, 60), (120, 50, 200)]
)
def test_matches_reference(seed: int, vocabulary_size: int, distinct: int, length: int) -> None:
    words, vocabulary = make_text(seed, vocabulary_size, distinct, length)
    assert correct(words, vocabulary) == reference_correct(words, vocabulary)


def test_exact_words_are_kept() -> None:
    _, vocabulary = make_text(5, 50, 1, 1)
    assert correct(vocabulary, vocabulary) == vocabulary


def test_empty_inputs() -> None:
    assert correct([], ["a"]) == []
    with pytest.raises(ValueError):
        correct(["a"], [])


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark) -> None:
    words, vocabulary = make_text(seed=42, vocabulary_size=100, distinct=25, length=200)
    # pytest-aide judges a candidate from the per-round times with a rank test, which needs
    # at least five rounds; ten keep one evaluation around two seconds at the start.
    result = benchmark.pedantic(correct, args=(words, vocabulary), rounds=10, iterations=1)
    assert result == reference_correct(words, vocabulary)
