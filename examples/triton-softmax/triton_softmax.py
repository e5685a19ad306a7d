"""Row-wise softmax as a Triton kernel that walks each row in blocks of BLOCK_SIZE columns.

This is the module pytest-aide optimizes. Its knobs are ``BLOCK_SIZE`` (columns loaded per
step; rows of any width are handled by looping, so every power of two is valid) and the
launch's ``num_warps``. Both start low on purpose: 16 columns per step means many loop
iterations per row, which is slow on a GPU and very slow under the interpreter.
The tests compare the result with ``torch.softmax`` for widths that are and are not powers
of two.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK_SIZE = 16  # aide: 16..4096 pow2


@triton.jit
def softmax_kernel(
    out_ptr, in_ptr, in_row_stride, out_row_stride, n_cols, BLOCK_SIZE: tl.constexpr
):
    """One program per row, three passes: running max, sum of exponentials, normalize."""
    row = tl.program_id(0)
    in_row = in_ptr + row * in_row_stride
    out_row = out_ptr + row * out_row_stride
    offsets = tl.arange(0, BLOCK_SIZE)

    row_max = tl.full([BLOCK_SIZE], float("-inf"), tl.float32)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + offsets
        x = tl.load(in_row + cols, mask=cols < n_cols, other=float("-inf")).to(tl.float32)
        row_max = tl.maximum(row_max, x)
    peak = tl.max(row_max, axis=0)

    total = tl.zeros([BLOCK_SIZE], tl.float32)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + offsets
        x = tl.load(in_row + cols, mask=cols < n_cols, other=float("-inf")).to(tl.float32)
        total += tl.exp(x - peak)
    denominator = tl.sum(total, axis=0)

    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + offsets
        mask = cols < n_cols
        x = tl.load(in_row + cols, mask=mask, other=float("-inf")).to(tl.float32)
        y = tl.exp(x - peak) / denominator
        tl.store(out_row + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension of a 2-D tensor, same dtype and device as ``x``."""
    if x.dim() != 2:
        raise ValueError(f"expected a 2-D tensor, got shape {tuple(x.shape)}")
    rows, cols = x.shape
    out = torch.empty_like(x)
    if rows == 0 or cols == 0:
        return out
    softmax_kernel[(rows,)](
        out,
        x,
        x.stride(0),
        out.stride(0),
        cols,
        BLOCK_SIZE=BLOCK_SIZE,
        num_warps=1,  # aide: choices 1 2 4 8 16
    )
    return out
