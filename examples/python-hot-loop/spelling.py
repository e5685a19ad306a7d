"""A tiny spelling corrector in plain Python: the module pytest-aide makes faster.

For every word of a text it finds the closest vocabulary word by Levenshtein distance: a
nested loop over the vocabulary around a nested loop over characters, the kind of code that
shows up at the top of a profile. Real text repeats words, so suggestions are memoized in
a bounded LRU cache whose size, ``CACHE_SIZE``, is the tuner's knob. It starts far too
small for the number of distinct words, so most lookups miss. A rewrite (an LLM) can go
much further: the tests only hold the result, which must equal the reference exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

CACHE_SIZE = 4  # aide: 1..4096 pow2


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions each cost 1."""
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(
                previous[j] + 1,  # delete a[i-1]
                current[j - 1] + 1,  # insert b[j-1]
                previous[j - 1] + cost,  # substitute
            )
        previous = current
    return previous[len(b)]


def closest(word: str, vocabulary: Sequence[str]) -> str:
    """The vocabulary word nearest to ``word``; ties go to the earliest in the vocabulary."""
    best, best_distance = vocabulary[0], edit_distance(word, vocabulary[0])
    for candidate in vocabulary[1:]:
        distance = edit_distance(word, candidate)
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best


def correct(words: Sequence[str], vocabulary: Sequence[str]) -> list[str]:
    """The closest vocabulary word for each of ``words``, in order.

    The cache lives for one call, so memory stays bounded by CACHE_SIZE suggestions.
    """
    if not vocabulary:
        raise ValueError("the vocabulary is empty")
    suggest = lru_cache(maxsize=CACHE_SIZE)(lambda word: closest(word, vocabulary))
    return [suggest(word) for word in words]
