"""The server side of the protocol: request messages into keyword arguments of the core, and the
hand-built replies whose tensor bytes the core writes in place.

Decoding walks the fields a message carries (``ListFields``: proto3 zeros and unset optional
fields are absent, so the core's defaults apply). Field numbers of the hand-built replies come
from the message descriptors; everything but the tensor bytes is serialized by protobuf itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from google.protobuf.message import Message

from sigmaserve import tensors, wire
from sigmaserve.errors import invalid
from sigmaserve.v1 import noise_service_pb2 as pb

_STRUCT = "google.protobuf.Struct"


def arguments(message: Message) -> dict[str, Any]:
    """The keyword arguments a request message carries, named like its fields.

    Enums become their keyword names (``SEED_MODE_BATCH`` -> ``"batch"``; dtypes the canonical
    names), Structs dicts, repeated fields lists. An explicitly present empty optional string
    (``preset: ""``) is ``None``, as the proto documents. The wire's own fields
    (``wire.WIRE_ONLY``) are not arguments: another spelling of one (``signed_seeds`` is
    ``seeds``) is mapped to it, the reply options (``tensor_values``) are left out.
    """
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        name = field.name
        if name in wire.REPLY_OPTIONS:
            continue
        argument = wire.WIRE_SPELLINGS.get(name, name)
        if argument in out:
            spellings = sorted(
                {argument, *(k for k, v in wire.WIRE_SPELLINGS.items() if v == argument)}
            )
            raise invalid(name, f"give one of {spellings}, not both")
        out[argument] = _value(field, value)
    return out


def wants_values(message: Message) -> bool:
    """Whether the request asks for ``Tensor.values`` beside the tensor bytes."""
    return bool(getattr(message, "tensor_values", False))


def latents_values(reply: bytes, request: LatentsReplyFields) -> bytes:
    """The ``latents.values`` of a serialized SampleInitLatentsResponse, as bytes to append to
    it: a second ``latents`` field that protobuf parsers merge into the first (embedded
    messages are merged, repeated fields concatenated), read from the payload the reply ends
    with, so nothing is drawn twice."""
    stored = tensors.storage_dtype(request.dtype)
    payload = np.frombuffer(
        reply, dtype=stored, count=request.numel, offset=len(reply) - request.nbytes
    )
    numbers = tensors.numeric_values(payload, request.dtype)
    values = pb.Tensor(values=numbers.tolist()).SerializeToString()
    return _LATENTS_KEY + varint(len(values)) + values


def _value(field: Any, value: Any) -> Any:
    if field.message_type is not None:
        if field.message_type.full_name == _STRUCT:
            return wire.struct_to_dict(value)
        return value
    if field.enum_type is not None:
        if field.enum_type.full_name == pb.DataType.DESCRIPTOR.full_name:
            return tensors.enum_to_dtype(value, field=field.name)
        known = field.enum_type.values_by_number.get(value)
        if known is None:  # proto3 enums are open: any number parses
            raise invalid(field.name, f"unknown value {value}")
        return wire.enum_value_name(field.enum_type, known.name)
    if field.is_repeated:
        return list(value)
    if field.has_presence and value == "":
        return None
    return value


# ---- hand-built replies ----------------------------------------------------------------------


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def field_key(message: Any, name: str) -> bytes:
    """The key bytes of a length-delimited field (number from the descriptor, wire type 2)."""
    return varint(message.fields_by_name[name].number << 3 | 2)


_LATENTS_KEY = field_key(pb.SampleInitLatentsResponse.DESCRIPTOR, "latents")
_DATA_KEY = field_key(pb.Tensor.DESCRIPTOR, "data")
#: Key of ``LatentsChunk.data``, the payload messages of StreamInitLatents.
CHUNK_DATA_KEY = field_key(pb.LatentsChunk.DESCRIPTOR, "data")
#: Key of ``PingResponse.data``.
PING_DATA_KEY = field_key(pb.PingResponse.DESCRIPTOR, "data")


@lru_cache(maxsize=1024)
def _tensor_head(dtype: str, shape: tuple[int, ...], nbytes: int) -> bytes:
    """The ``latents`` field up to its tensor bytes: key, length, dtype, shape, data key and
    data length."""
    inner = pb.Tensor(dtype=tensors.dtype_to_enum(dtype), shape=shape).SerializeToString()
    inner += _DATA_KEY + varint(nbytes)
    return _LATENTS_KEY + varint(len(inner) + nbytes) + inner


class LatentsReplyFields(Protocol):
    """What the reply messages say about a latents request (``_core.LatentsRequest`` has it)."""

    @property
    def init_noise_sigma(self) -> float: ...
    @property
    def wrapped_seeds(self) -> Sequence[int]: ...
    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> Sequence[int]: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def numel(self) -> int: ...
    @property
    def return_generator_states(self) -> bool: ...
    def generator_states(self) -> Sequence[bytes]: ...


def _states(request: LatentsReplyFields) -> Sequence[bytes]:
    return request.generator_states() if request.return_generator_states else ()


def latents_reply_prefix(request: LatentsReplyFields) -> bytes:
    """Every byte of a serialized SampleInitLatentsResponse before its tensor bytes.

    Parsed as the declared message; the latents field comes after the others (parsers accept
    fields in any order), so the payload can be written last, in place.
    """
    head = pb.SampleInitLatentsResponse(
        init_noise_sigma=request.init_noise_sigma,
        seeds=request.wrapped_seeds,
        generator_states=_states(request),
    ).SerializeToString()
    return head + _tensor_head(request.dtype, tuple(request.shape), request.nbytes)


def latents_header(request: LatentsReplyFields) -> bytes:
    """The first message of StreamInitLatents, serialized."""
    header = pb.LatentsHeader(
        dtype=tensors.dtype_to_enum(request.dtype),
        shape=list(request.shape),
        init_noise_sigma=request.init_noise_sigma,
        seeds=request.wrapped_seeds,
        total_bytes=request.nbytes,
        generator_states=_states(request),
    )
    return pb.LatentsChunk(header=header).SerializeToString()


def ping_reply(data: memoryview) -> bytes:
    """A serialized PingResponse carrying ``data``."""
    if not len(data):
        return b""
    return b"".join((PING_DATA_KEY, varint(len(data)), data))


__all__ = [
    "CHUNK_DATA_KEY",
    "arguments",
    "latents_values",
    "wants_values",
    "field_key",
    "latents_header",
    "latents_reply_prefix",
    "ping_reply",
    "varint",
]
