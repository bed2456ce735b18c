"""Conversion between numpy arrays and the wire ``Tensor`` message (raw little-endian bytes)."""

from __future__ import annotations

import numpy as np

from sigmaserve.errors import InvalidArgumentError, invalid
from sigmaserve.v1 import noise_service_pb2 as pb

# dtype name -> (wire enum, numpy storage dtype). bfloat16 travels as its uint16 bit patterns.
_DTYPES: dict[str, tuple[pb.DataType, np.dtype]] = {
    "float32": (pb.DATA_TYPE_FP32, np.dtype("<f4")),
    "float64": (pb.DATA_TYPE_FP64, np.dtype("<f8")),
    "float16": (pb.DATA_TYPE_FP16, np.dtype("<f2")),
    "bfloat16": (pb.DATA_TYPE_BF16, np.dtype("<u2")),
    "int64": (pb.DATA_TYPE_INT64, np.dtype("<i8")),
}
_BY_ENUM: dict[int, str] = {int(enum): name for name, (enum, _) in _DTYPES.items()}
NOISE_DTYPES = ("float32", "float64", "float16", "bfloat16")
# Largest tensor whose elements a reply also carries as numbers (``Tensor.values``, for JSON
# clients): 65536 doubles are about 1.3 MB of JSON.
MAX_TENSOR_VALUES = 1 << 16


def dtype_to_enum(name: str) -> pb.DataType:
    """Wire enum of a dtype name (``"float32"``...; case does not matter)."""
    try:
        return _DTYPES[name][0]
    except KeyError:
        pass
    lowered = name.lower() if isinstance(name, str) else name
    if lowered in _DTYPES:
        return _DTYPES[lowered][0]
    raise invalid("dtype", f"unknown dtype {name!r}; expected one of {list(_DTYPES)}")


def enum_to_dtype(value: int, *, field: str = "dtype", default: str | None = None) -> str:
    """dtype name of a wire enum; ``DATA_TYPE_UNSPECIFIED`` gives ``default`` when one is set."""
    if value == pb.DATA_TYPE_UNSPECIFIED and default is not None:
        return default
    try:
        return _BY_ENUM[value]
    except KeyError:
        raise invalid(field, f"unsupported data type {value}") from None


def storage_dtype(name: str) -> np.dtype:
    """The numpy dtype an array of this dtype name is stored in (uint16 for bfloat16)."""
    return _DTYPES[name][1]


def dtype_name_of(array: np.ndarray, declared: str | None = None) -> str:
    """dtype name of an array; ``declared`` disambiguates uint16 (bfloat16 bits)."""
    if declared is not None:
        return declared
    for name, (_, np_dtype) in _DTYPES.items():
        if array.dtype == np_dtype:
            return name
    raise InvalidArgumentError(f"array: unsupported dtype {array.dtype}", "array")


def to_proto(array: np.ndarray, dtype: str | None = None, *, values: bool = False) -> pb.Tensor:
    """Pack an array into a Tensor message (one copy into the bytes field); ``values`` also
    fills ``Tensor.values`` with the elements as numbers (see :func:`numeric_values`)."""
    name = dtype_name_of(array, dtype)
    wire = np.ascontiguousarray(array, dtype=storage_dtype(name))
    tensor = pb.Tensor(dtype=dtype_to_enum(name), shape=list(wire.shape), data=wire.tobytes())
    if values:
        tensor.values.extend(numeric_values(wire, name).tolist())
    return tensor


def check_value_count(count: int) -> None:
    """Refuse ``tensor_values`` for a tensor of more than ``MAX_TENSOR_VALUES`` elements."""
    if count > MAX_TENSOR_VALUES:
        raise invalid(
            "tensor_values",
            f"numbers are sent for tensors of at most {MAX_TENSOR_VALUES} elements, this one "
            f"has {count}; read its `data` bytes instead",
        )


def numeric_values(stored: np.ndarray, dtype: str) -> np.ndarray:
    """The elements of an array in its storage dtype as float64, C order (bfloat16 bit patterns
    and float16 widened exactly), for ``Tensor.values``; at most ``MAX_TENSOR_VALUES``."""
    check_value_count(stored.size)
    if dtype == "bfloat16":
        from sigmaserve.bf16 import float32_from_bfloat16_bits

        stored = float32_from_bfloat16_bits(stored)
    return np.asarray(stored, dtype=np.float64).reshape(-1)


def from_proto(tensor: pb.Tensor, *, field: str = "tensor") -> np.ndarray:
    """Unpack a Tensor message into a read-only numpy array viewing the message bytes."""
    name = enum_to_dtype(tensor.dtype, field=f"{field}.dtype")
    np_dtype = storage_dtype(name)
    shape = tuple(int(d) for d in tensor.shape)
    if any(d < 0 for d in shape):
        raise invalid(f"{field}.shape", f"negative dimension in {shape}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count * np_dtype.itemsize != len(tensor.data):
        raise invalid(
            f"{field}.data",
            f"holds {len(tensor.data)} bytes, shape {shape} of {name} needs "
            f"{count * np_dtype.itemsize}",
        )
    return np.frombuffer(tensor.data, dtype=np_dtype).reshape(shape)
