"""Hand numpy latents to torch: bfloat16 bit patterns, pinned host memory, non-blocking copies."""

from __future__ import annotations

from typing import Any

import numpy as np


def numpy_to_torch(array: np.ndarray, dtype_name: str, *, device: Any = None, dtype: Any = None):
    """A torch tensor of ``array`` (``dtype_name`` says how to read it; bfloat16 is uint16 bits).

    CPU: shares memory with a writable array, copies a read-only one (torch tensors are
    writable). CUDA: the bytes are copied once into pinned host memory and moved with
    ``non_blocking=True``, so the transfer overlaps with whatever the caller does next.
    """
    import torch

    target = torch.device(device) if device is not None else None
    array = c_contiguous(array)
    if target is not None and target.type == "cuda":
        host = torch.empty(array.shape, dtype=_storage_dtype(torch, array), pin_memory=True)
        host.numpy()[...] = array
        host = _as_declared(torch, host, dtype_name).to(target, non_blocking=True)
    else:
        if not array.flags.writeable:
            array = array.copy()
        host = _as_declared(torch, torch.from_numpy(array), dtype_name)
        if target is not None:
            host = host.to(target)
    return host if dtype is None else host.to(dtype)


def c_contiguous(array: np.ndarray, dtype: Any = None) -> np.ndarray:
    """``array`` in C order (a copy only if needed), keeping its shape: unlike
    ``np.ascontiguousarray``, which turns a 0-d array into shape ``(1,)``."""
    return np.require(array, dtype=dtype, requirements="C")


def _storage_dtype(torch: Any, array: np.ndarray) -> Any:
    return torch.from_numpy(np.empty(0, dtype=array.dtype)).dtype


def _as_declared(torch: Any, tensor: Any, dtype_name: str) -> Any:
    return tensor.view(torch.bfloat16) if dtype_name == "bfloat16" else tensor
