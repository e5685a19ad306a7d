"""Tests for hello_kernel: a float64 reference check over shapes and seeds, and a benchmark.

The benchmark is the metric pytest-aide minimizes (pytest-benchmark's ``mean``). The
correctness test guards it: a rewrite that is fast but wrong (drops the scale, swaps the
exact GELU for the tanh approximation, mishandles a last partial chunk, changes the dtype or
device) fails here and is never kept.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hello_kernel import fused_scores

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":
    torch.set_num_threads(1)  # one thread: repeatable timings on a shared machine

#: float32 result vs a float64 reference: relative error well below the 4e-4 that the
#: tanh-approximate GELU would introduce, so that swap is caught.
RTOL, ATOL = 2e-5, 1e-7


def reference(x: torch.Tensor, w: torch.Tensor, scale: float) -> torch.Tensor:
    """The same maths in float64, unchunked, written as plainly as possible."""
    logits = (x.double() @ w.double()) / scale
    return torch.softmax(F.gelu(logits), dim=-1).to(x.dtype)


def make_inputs(rows: int, k: int, cols: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, k, generator=generator)
    w = torch.randn(k, cols, generator=generator)
    return x.to(DEVICE), w.to(DEVICE)


# Rows that are not multiples of any chunk size (1, 7, 1025) catch a lost last chunk.
@pytest.mark.parametrize("rows,k,cols", [(1, 8, 3), (7, 33, 5), (64, 128, 100), (1025, 64, 257)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference(rows: int, k: int, cols: int, seed: int) -> None:
    x, w = make_inputs(rows, k, cols, seed)
    scale = float(k) ** 0.5
    result = fused_scores(x, w, scale)
    assert result.shape == (rows, cols)
    assert result.dtype == x.dtype
    assert result.device == x.device
    torch.testing.assert_close(result, reference(x, w, scale), rtol=RTOL, atol=ATOL)


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark) -> None:
    x, w = make_inputs(1024, 256, 256, seed=0)
    scale = 16.0

    def run() -> torch.Tensor:
        result = fused_scores(x, w, scale)
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        return result

    result = benchmark.pedantic(run, rounds=15, iterations=1, warmup_rounds=2)
    torch.testing.assert_close(result, reference(x, w, scale), rtol=RTOL, atol=ATOL)
