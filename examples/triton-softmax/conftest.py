"""Run the Triton kernel on the CPU through Triton's interpreter when there is no GPU.

TRITON_INTERPRET must be set before ``triton_softmax`` is imported (``@triton.jit`` reads
it when the kernel is defined), and conftest.py is imported before the test module. An
explicit TRITON_INTERPRET in the environment is left as it is.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
