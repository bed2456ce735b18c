"""Hand numpy latents to torch: bfloat16 bit patterns, pinned host memory, non-blocking copies."""

from __future__ import annotations

from typing import Any

import numpy as np


def numpy_to_torch(array: np.ndarray, dtype_name: str, *, device: Any = None, dtype: Any = None):
    """A torch tensor of ``array`` (``dtype_name`` says how to read it; bfloat16 is uint16 bits).

    For a CUDA ``device`` the host copy is pinned and moved with ``non_blocking=True``, so the
    transfer overlaps with whatever the caller does next on the host.
    """
    import torch

    host = torch.from_numpy(np.ascontiguousarray(array))
    if dtype_name == "bfloat16":
        host = host.view(torch.bfloat16)
    target = torch.device(device) if device is not None else None
    if target is not None and target.type == "cuda":
        host = host.pin_memory().to(target, non_blocking=True)
    elif target is not None:
        host = host.to(target)
    return host if dtype is None else host.to(dtype)
