"""bfloat16 as uint16 bit patterns (numpy has no bfloat16 dtype)."""

from __future__ import annotations

import numpy as np


def float32_from_bfloat16_bits(bits: np.ndarray) -> np.ndarray:
    """Widen bfloat16 bit patterns to float32 (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def bfloat16_bits_from_float32(values: np.ndarray) -> np.ndarray:
    """Round float32 to bfloat16 bit patterns, nearest-even, NaN kept quiet (torch's rule)."""
    as_float = np.asarray(values, dtype=np.float32)
    bits = as_float.view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    rounded = ((bits + rounding) >> 16).astype(np.uint16)
    return np.where(np.isnan(as_float), np.uint16(0x7FC0), rounded)
