"""dtype arguments as names: numpy and torch dtype objects become the name the core reads.

Only the coercion of objects lives here; which names are valid (and their aliases) is the
core's rule (``Dtype::parse`` in rust_core).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def dtype_name(dtype: Any) -> str:
    """``"float32"`` for ``np.float32``, ``np.dtype("float32")`` or ``torch.float32``; strings
    pass through unchanged (the core validates them)."""
    if isinstance(dtype, str):
        return dtype
    text = str(dtype)
    if text.startswith("torch."):
        return text[len("torch.") :]
    try:
        return np.dtype(dtype).name
    except TypeError:
        return text


__all__ = ["dtype_name"]
