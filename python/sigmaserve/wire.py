"""Request and reply mapping shared by the server and the client.

Both sides speak in the keyword arguments of the local API (``get_schedule``,
``sample_init_latents``); this module turns them into protobuf messages and back, so a remote
call and a local call see the same arguments and return the same objects.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from google.protobuf import struct_pb2

from sigmaserve import _core, noise, tensors
from sigmaserve.errors import invalid
from sigmaserve.v1 import noise_service_pb2 as pb

DEFAULT_PRESET = "sd15"
_DOUBLE = struct.Struct("<d")
U64 = 1 << 64

SOURCES = {
    "cpu": pb.NOISE_SOURCE_CPU,
    "cuda": pb.NOISE_SOURCE_CUDA,
    "a1111_nv": pb.NOISE_SOURCE_A1111_NV,
}
SEED_MODES = {
    "per_item": pb.SEED_MODE_PER_ITEM,
    "batch": pb.SEED_MODE_BATCH,
    "a1111": pb.SEED_MODE_A1111,
}


# ---- Struct values -------------------------------------------------------------------------


def dict_to_struct(values: Mapping[str, Any] | None, field: str) -> struct_pb2.Struct:
    """A Struct of JSON-like keyword values (numpy scalars and arrays become numbers and lists)."""
    struct = struct_pb2.Struct()
    if values:
        try:
            struct.update({key: _jsonable(value) for key, value in values.items()})
        except (TypeError, ValueError) as exc:
            raise invalid(field, f"values must be JSON-like: {exc}") from None
    return struct


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Struct back to keyword values; integral numbers become ints (JSON has only doubles).

    Walks the Struct itself (not ``MessageToDict``), so NaN and infinities reach the validation
    of the local API, which names the field, instead of failing inside the JSON converter.
    """
    return {key: _from_value(value) for key, value in struct.fields.items()}


def _from_value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return _from_json_number(value.number_value)
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_from_value(v) for v in value.list_value.values]
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _from_json_number(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_from_json_number(v) for v in value]
    return value


# ---- preset, steps, seeds ------------------------------------------------------------------


def preset_to_wire(preset: str | None) -> str:
    """Python ``preset=None`` (class defaults) travels as the empty string."""
    return "" if preset is None else preset


def preset_from_wire(message: Any) -> str | None:
    if not message.HasField("preset"):
        return DEFAULT_PRESET
    return message.preset or None


def seeds_to_wire(seeds: int | Sequence[int]) -> list[int]:
    """Seeds as uint64: torch's range [-2**63, 2**64), negatives as two's complement."""
    seed_list = [seeds] if isinstance(seeds, (int, np.integer)) else list(seeds)
    out = []
    for seed in seed_list:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise invalid("seeds", f"seeds must be integers, got {seed!r}")
        if not -(1 << 63) <= seed < U64:
            raise invalid("seeds", f"seed {seed} is outside torch's range [-2**63, 2**64)")
        out.append(int(seed) % U64)
    return out


def positive_or_none(message: Any, field: str) -> int | None:
    return getattr(message, field) if message.HasField(field) else None


# ---- GetSchedule ---------------------------------------------------------------------------


def schedule_request(
    scheduler: str,
    num_inference_steps: int | None,
    preset: str | None,
    config: Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
) -> pb.GetScheduleRequest:
    request = pb.GetScheduleRequest(
        scheduler=scheduler,
        preset=preset_to_wire(preset),
        config=dict_to_struct(config, "config"),
        overrides=dict_to_struct(overrides, "overrides"),
    )
    if num_inference_steps is not None:
        request.num_inference_steps = num_inference_steps
    return request


def schedule_kwargs(request: pb.GetScheduleRequest) -> dict[str, Any]:
    """Keyword arguments of ``get_schedule`` for a request."""
    return {
        "scheduler": request.scheduler,
        "num_inference_steps": positive_or_none(request, "num_inference_steps"),
        "preset": preset_from_wire(request),
        "config": struct_to_dict(request.config) if request.HasField("config") else None,
        "overrides": struct_to_dict(request.overrides),
    }


_SCHEDULE_ARRAYS = ("timesteps", "sigmas", "betas", "alphas_cumprod")


def schedule_to_proto(schedule: Any) -> pb.GetScheduleResponse:
    """A ``Schedule`` as a reply: arrays as tensors, everything else as JSON."""
    data = schedule.to_dict()
    reply = pb.GetScheduleResponse(
        scheduler=schedule.scheduler,
        init_noise_sigma=float(schedule.init_noise_sigma),
        config_json=json.dumps(schedule.config),
        warnings=list(schedule.warnings),
    )
    for name in _SCHEDULE_ARRAYS:
        array = getattr(schedule, name)
        if array is not None:
            getattr(reply, name).CopyFrom(tensors.to_proto(np.asarray(array)))
    handled = {*_SCHEDULE_ARRAYS, "scheduler", "init_noise_sigma", "config", "warnings"}
    reply.extras_json = json.dumps({k: v for k, v in data.items() if k not in handled})
    return reply


def schedule_from_proto(reply: pb.GetScheduleResponse) -> Any:
    """Rebuild the ``Schedule`` a reply describes."""
    from sigmaserve.schedules import Schedule

    data: dict[str, Any] = json.loads(reply.extras_json or "{}")
    data.update(
        scheduler=reply.scheduler,
        init_noise_sigma=reply.init_noise_sigma,
        config=json.loads(reply.config_json or "{}"),
        warnings=list(reply.warnings),
    )
    for name in _SCHEDULE_ARRAYS:
        data[name] = (
            tensors.from_proto(getattr(reply, name), field=name).copy()
            if reply.HasField(name)
            else None
        )
    return Schedule.from_dict(data)


# ---- SampleInitLatents ---------------------------------------------------------------------


def latents_request(
    *,
    shape: Sequence[int] | None = None,
    width: int | None = None,
    height: int | None = None,
    batch_size: int = 1,
    preset: str | None = DEFAULT_PRESET,
    seeds: int | Sequence[int],
    source: str = "cpu",
    dtype: str = "float32",
    sigma: float | None = None,
    scheduler: str | None = None,
    num_inference_steps: int | None = None,
    seed_mode: str = "per_item",
    noise_options: Mapping[str, Any] | None = None,
    return_generator_states: bool = False,
    **scheduler_overrides: Any,
) -> pb.SampleInitLatentsRequest:
    """The request for the arguments of ``sample_init_latents``."""
    if source not in SOURCES:
        raise invalid("source", f"unknown source {source!r}; expected one of {list(SOURCES)}")
    if seed_mode not in SEED_MODES:
        raise invalid("seed_mode", f"unknown seed_mode {seed_mode!r}; expected {list(SEED_MODES)}")
    if shape is not None and len(shape) == 0:
        raise invalid("shape", "must have at least one dimension")
    request = pb.SampleInitLatentsRequest(
        shape=list(shape) if shape is not None else [],
        width=width or 0,
        height=height or 0,
        batch_size=batch_size,
        preset=preset_to_wire(preset),
        seeds=seeds_to_wire(seeds),
        seed_mode=SEED_MODES[seed_mode],
        source=SOURCES[source],
        dtype=tensors.dtype_to_enum(dtype),
        scheduler=scheduler or "",
        scheduler_overrides=dict_to_struct(scheduler_overrides, "scheduler_overrides"),
        noise_options=dict_to_struct(noise_options, "noise_options"),
        return_generator_states=return_generator_states,
    )
    if sigma is not None:
        request.sigma = sigma
    if num_inference_steps is not None:
        request.num_inference_steps = num_inference_steps
    return request


def latents_kwargs(request: pb.SampleInitLatentsRequest) -> dict[str, Any]:
    """Keyword arguments of ``sample_init_latents`` for a request."""
    dtype = tensors.enum_to_dtype(request.dtype, default="float32")
    if dtype not in tensors.NOISE_DTYPES:
        raise invalid("dtype", f"noise comes in {list(tensors.NOISE_DTYPES)}, not {dtype}")
    return {
        "shape": list(request.shape) if request.shape else None,
        "width": request.width or None,
        "height": request.height or None,
        "batch_size": request.batch_size or 1,
        "preset": preset_from_wire(request),
        "seeds": list(request.seeds),
        "seed_mode": _enum_name(SEED_MODES, request.seed_mode, "seed_mode", "per_item"),
        "source": _enum_name(SOURCES, request.source, "source", "cpu"),
        "dtype": dtype,
        "sigma": request.sigma if request.HasField("sigma") else None,
        "scheduler": request.scheduler or None,
        "num_inference_steps": positive_or_none(request, "num_inference_steps"),
        "noise_options": (
            struct_to_dict(request.noise_options) if request.HasField("noise_options") else {}
        ),
        "return_generator_states": request.return_generator_states,
        **(
            struct_to_dict(request.scheduler_overrides)
            if request.HasField("scheduler_overrides")
            else {}
        ),
    }


def _enum_name(table: Mapping[str, int], value: int, field: str, default: str) -> str:
    if value == 0:
        return default
    for name, number in table.items():
        if number == value:
            return name
    raise invalid(field, f"unknown value {value}")


# ---- hand-built replies (the hot path) ------------------------------------------------------


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    if value < 0x80:
        return _SMALL_VARINTS[value]
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_SMALL_VARINTS = [bytes((i,)) for i in range(0x80)]
_LATENTS_TAG = b"\x1a"  # SampleInitLatentsResponse.latents = 3 and Tensor.data = 3, wire type 2
_CHUNK_DATA_TAG = b"\x12"  # LatentsChunk.data = 2, wire type 2


def latents_reply_prefix(
    init_noise_sigma: float,
    seeds: Sequence[int],
    dtype: str,
    shape: Sequence[int],
    nbytes: int,
    generator_states: Sequence[bytes] = (),
) -> bytes:
    """Everything of a serialized SampleInitLatentsResponse that precedes the tensor bytes.

    ``prefix + data`` is byte-identical to ``SerializeToString()`` of the same message (fields in
    number order, the payload last), but the payload is copied once instead of three times.
    Generator states (field 4), when present, go before the payload: parsers accept any order.
    Encoded by hand (a protobuf round trip costs more than the small tensors' whole fill);
    unusual values (negative zero or NaN sigma, negative dims) take the protobuf encoder.
    """
    sigma = float(init_noise_sigma)
    if not (sigma > 0 or (sigma == 0 and math.copysign(1.0, sigma) > 0)) or any(
        d < 0 for d in shape
    ):
        return _latents_reply_prefix_protobuf(
            init_noise_sigma, seeds, dtype, shape, nbytes, generator_states
        )
    parts = [b"\x09" + _DOUBLE.pack(sigma)] if sigma else []
    wire_seeds = seeds_to_wire(list(seeds))
    if wire_seeds:
        packed = b"".join([varint(v) for v in wire_seeds])
        parts += (b"\x12", varint(len(packed)), packed)
    for state in generator_states:
        parts += (b"\x22", varint(len(state)), state)
    key = (dtype, tuple(shape), nbytes)
    tensor_head = _TENSOR_HEADS.get(key)
    if tensor_head is None:
        enum = tensors.dtype_to_enum(dtype)
        inner = [b"\x08" + varint(enum)] if enum else []
        if shape:
            packed = b"".join([varint(int(d)) for d in shape])
            inner += (b"\x12", varint(len(packed)), packed)
        inner += (_LATENTS_TAG, varint(nbytes))
        head = b"".join(inner)
        tensor_head = _LATENTS_TAG + varint(len(head) + nbytes) + head
        if len(_TENSOR_HEADS) < 1024:
            _TENSOR_HEADS[key] = tensor_head
    parts.append(tensor_head)
    return b"".join(parts)


# (dtype, shape, nbytes) -> the encoded Tensor header (with its field tag and length)
_TENSOR_HEADS: dict[tuple[str, tuple[int, ...], int], bytes] = {}


def _latents_reply_prefix_protobuf(
    init_noise_sigma: float,
    seeds: Sequence[int],
    dtype: str,
    shape: Sequence[int],
    nbytes: int,
    generator_states: Sequence[bytes] = (),
) -> bytes:
    """:func:`latents_reply_prefix` through protobuf messages (the reference encoding)."""
    head = pb.SampleInitLatentsResponse(
        init_noise_sigma=init_noise_sigma,
        seeds=seeds_to_wire(list(seeds)),
        generator_states=list(generator_states),
    ).SerializeToString()
    tensor_head = pb.Tensor(dtype=tensors.dtype_to_enum(dtype), shape=list(shape))
    inner = tensor_head.SerializeToString() + _LATENTS_TAG + varint(nbytes)
    return head + _LATENTS_TAG + varint(len(inner) + nbytes) + inner


def encode_latents_reply(
    array: np.ndarray,
    dtype: str,
    init_noise_sigma: float,
    seeds: Sequence[int],
    generator_states: Sequence[bytes] = (),
) -> bytes:
    """A serialized SampleInitLatentsResponse for ``array`` with one copy of its bytes."""
    data = np.ascontiguousarray(array, dtype=tensors.storage_dtype(dtype))
    prefix = latents_reply_prefix(
        init_noise_sigma, seeds, dtype, data.shape, data.nbytes, generator_states
    )
    return b"".join((prefix, data.data.cast("B")))


def encode_chunk(data: Any) -> bytes:
    """A serialized ``LatentsChunk{data}`` from any bytes-like object (one copy)."""
    view = memoryview(data).cast("B")
    return b"".join((_CHUNK_DATA_TAG, varint(len(view)), view))


# ---- the Rust-filled replies (the hottest path) ---------------------------------------------

# noise_options the Rust-filled reply takes (generator options); anything else (variation
# seeds, batch_index, seed resize, unknown keys) goes through the reference path.
FAST_NOISE_OPTIONS = frozenset({"cpu_kernel", "gpu"})


def fast_latents_reply(
    *,
    dims: Sequence[int],
    seeds: Sequence[int],
    seed_mode: str,
    source: str,
    dtype: str,
    init_noise_sigma: float,
    noise_options: Mapping[str, Any],
    generator_states: Sequence[bytes] = (),
    max_elements: int | None = None,
) -> bytes:
    """A serialized SampleInitLatentsResponse whose payload the core writes in place.

    Byte-identical to :func:`encode_latents_reply` of ``sample_init_latents(...)`` for the same
    arguments: the prefix is built here, then ``_core.wire_latents_reply`` allocates the final
    ``bytes``, draws the noise into it with the GIL released and scales it by
    ``init_noise_sigma`` with torch's arithmetic (``latents.scale_noise``). ``noise_options``
    may only hold :data:`FAST_NOISE_OPTIONS` (validated like ``noise.sample_noise`` does).
    """
    if not seeds:
        raise invalid("seeds", "at least one seed is required")
    cpu_kernel = noise._cpu_kernel(noise_options.get("cpu_kernel"))
    gpu = noise._gpu(noise_options.get("gpu"))
    nbytes = math.prod(dims) * tensors.storage_dtype(dtype).itemsize
    prefix = latents_reply_prefix(init_noise_sigma, seeds, dtype, dims, nbytes, generator_states)
    reply: bytes = _core.wire_latents_reply(
        prefix,
        init_noise_sigma,
        list(dims),
        list(seeds),
        seed_mode=seed_mode,
        source=source,
        dtype=dtype,
        cpu_kernel=cpu_kernel,
        gpu=gpu,
        max_elements=max_elements,
    )
    return reply


class FastLatentsReply:
    """:func:`fast_latents_reply` with everything but the seeds worked out once.

    For servers that answer many requests differing only in their seeds: the validated
    arguments, the generator options and the encoded sigma and tensor header are kept, so a
    call only encodes the seeds and lets the core fill the payload. ``build`` returns None where
    the reply prefix would not take the hand encoder (see :func:`latents_reply_prefix`).
    Byte-identical to ``fast_latents_reply(seeds=seeds, **same arguments)`` without generator
    states.
    """

    __slots__ = ("_call", "_dims", "_factor", "_head", "_options", "_tail", "elements")

    def __init__(
        self,
        dims: tuple[int, ...],
        factor: float,
        head: bytes,
        tail: bytes,
        options: dict[str, Any],
    ) -> None:
        self._dims = list(dims)
        self._factor = factor
        self._head = head
        self._tail = tail
        self._options = options
        self._call = _core.wire_latents_reply
        self.elements = math.prod(dims)

    @classmethod
    def build(
        cls,
        *,
        dims: Sequence[int],
        seed_mode: str,
        source: str,
        dtype: str,
        init_noise_sigma: float,
        noise_options: Mapping[str, Any],
        max_elements: int | None = None,
    ) -> FastLatentsReply | None:
        cpu_kernel = noise._cpu_kernel(noise_options.get("cpu_kernel"))
        gpu = noise._gpu(noise_options.get("gpu"))
        sigma = float(init_noise_sigma)
        if not (sigma > 0 or (sigma == 0 and math.copysign(1.0, sigma) > 0)) or any(
            d < 0 for d in dims
        ):
            return None
        nbytes = math.prod(dims) * tensors.storage_dtype(dtype).itemsize
        tail = latents_reply_prefix(sigma, [], dtype, dims, nbytes)
        head = b"\x09" + _DOUBLE.pack(sigma) if sigma else b""
        assert tail.startswith(head)
        options = {
            "seed_mode": seed_mode,
            "source": source,
            "dtype": dtype,
            "cpu_kernel": cpu_kernel,
            "gpu": gpu,
            "max_elements": max_elements,
        }
        return cls(tuple(int(d) for d in dims), init_noise_sigma, head, tail[len(head) :], options)

    def __call__(self, seeds: Sequence[int]) -> bytes:
        """The reply for ``seeds`` (uint64 values, as a request carries them)."""
        if not seeds:
            raise invalid("seeds", "at least one seed is required")
        seed_list = list(seeds)
        if len(seed_list) == 1 and 0 <= seed_list[0] < 0x80:
            prefix = b"".join((self._head, b"\x12\x01", _SMALL_VARINTS[seed_list[0]], self._tail))
        else:
            wire_seeds = seeds_to_wire(seed_list)
            packed = b"".join([varint(v) for v in wire_seeds])
            prefix = b"".join((self._head, b"\x12", varint(len(packed)), packed, self._tail))
        reply: bytes = self._call(prefix, self._factor, self._dims, seed_list, **self._options)
        return reply
