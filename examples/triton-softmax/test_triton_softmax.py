"""Tests for triton_softmax: agreement with torch.softmax over shapes and seeds, and speed.

Without a GPU the kernel runs under Triton's interpreter (see conftest.py), so shapes are
kept small: one evaluation takes a few seconds. On a GPU the benchmark uses a larger input
and more rounds, since one launch takes microseconds.
"""

from __future__ import annotations

import os

import pytest
import torch
from triton_softmax import softmax

ON_GPU = torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"
DEVICE = "cuda" if ON_GPU else "cpu"

#: float32 softmax vs torch.softmax (both in float32): a few ulps of 1.0.
RTOL, ATOL = 1e-5, 1e-6


def make_input(rows: int, cols: int, seed: int, spread: float = 3.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (spread * torch.randn(rows, cols, generator=generator)).to(DEVICE)


# Widths below, at and above small powers of two, and not powers of two at all (7, 100,
# 257, 1000): a kernel that ignores the mask or the last partial block fails here.
@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 7), (4, 100), (2, 257), (3, 1000)])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_torch(rows: int, cols: int, seed: int) -> None:
    x = make_input(rows, cols, seed)
    result = softmax(x)
    assert result.shape == x.shape and result.dtype == x.dtype and result.device == x.device
    torch.testing.assert_close(result, torch.softmax(x, dim=-1), rtol=RTOL, atol=ATOL)


def test_large_logits_do_not_overflow() -> None:
    """Logits near 1e4 overflow exp() unless the row maximum is subtracted first."""
    x = make_input(2, 300, seed=3, spread=1e4)
    torch.testing.assert_close(softmax(x), torch.softmax(x, dim=-1), rtol=RTOL, atol=ATOL)


def test_rows_sum_to_one() -> None:
    sums = softmax(make_input(5, 333, seed=4)).sum(dim=-1)
    torch.testing.assert_close(sums, torch.ones_like(sums), rtol=0, atol=1e-5)


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark) -> None:
    # pytest-aide judges a candidate from the per-round times with a rank test, which needs
    # at least five rounds per side.
    if ON_GPU:
        x = make_input(4096, 2048, seed=0)
        rounds, warmup = 50, 5
    else:
        x = make_input(4, 512, seed=0)
        rounds, warmup = 8, 1

    def run() -> torch.Tensor:
        result = softmax(x)
        if ON_GPU:
            torch.cuda.synchronize()
        return result

    result = benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=warmup)
    torch.testing.assert_close(result, torch.softmax(x, dim=-1), rtol=RTOL, atol=ATOL)
