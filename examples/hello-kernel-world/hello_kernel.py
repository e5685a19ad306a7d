"""Attention-style scores: softmax(gelu(x @ w / scale)), row by row in chunks.

This is the module pytest-aide optimizes. The two constants below are the tuner's
knobs and both start from a deliberately poor, plausible setting: tiny row chunks (every
chunk pays Python and dispatch overhead) and an upcast to float64 "for safety" (twice the
arithmetic, plus a copy of ``w`` per chunk). The tests hold the contract: the result must
match a float64 reference within the tolerance they state, for any chunk size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ROW_CHUNK = 4  # aide: 1..1024 pow2
UPCAST_TO_FLOAT64 = True


def fused_scores(x: torch.Tensor, w: torch.Tensor, scale: float) -> torch.Tensor:
    """Row-wise ``softmax(gelu((x @ w) / scale))`` with the exact (erf) GELU.

    ``x`` is (rows, k), ``w`` is (k, cols); the result is (rows, cols) in ``x``'s dtype
    and on ``x``'s device. Rows are processed ROW_CHUNK at a time to bound the memory of
    the intermediate (rows, cols) products.
    """
    rows = x.shape[0]
    out = torch.empty(rows, w.shape[1], dtype=x.dtype, device=x.device)
    for start in range(0, rows, ROW_CHUNK):
        block = x[start : start + ROW_CHUNK]
        weights = w
        if UPCAST_TO_FLOAT64:
            block = block.double()
            weights = w.double()
        logits = (block @ weights) / scale
        out[start : start + ROW_CHUNK] = torch.softmax(F.gelu(logits), dim=-1).to(x.dtype)
    return out
