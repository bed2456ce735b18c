"""The client side of the protocol: keyword arguments into request messages, replies into the
objects the local API returns.

Requests are encoded generically from the message descriptors (the argument names of the local
API are the request's field names), so this module holds no rule about the values: the server
validates them with the same core the local call uses. The only encodings here are the wire's
own: enum names, dtype names (``tensors``), seeds as uint64 (negative seeds as their two's
complement, torch's ``manual_seed`` convention), and ``None`` as the empty string for the
optional string fields where an empty value means "none" (``preset``).

Nothing here imports the compiled core.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from sigmaserve import tensors
from sigmaserve.dtypes import dtype_name
from sigmaserve.errors import invalid
from sigmaserve.results import Latents, Schedule
from sigmaserve.v1 import noise_service_pb2 as pb

M = TypeVar("M", bound=Message)
U64 = 1 << 64
# Request fields that belong to the wire rather than to the library's arguments, for clients
# that speak JSON (grpcurl): another spelling of an argument (int64 seeds, which JSON can write
# negative), and how the reply is written (numbers beside the tensor bytes). The client never
# sends them as arguments; the server maps them in ``protocol.arguments``.
WIRE_SPELLINGS = {"signed_seeds": "seeds"}
REPLY_OPTIONS = frozenset({"tensor_values"})
WIRE_ONLY = frozenset({*WIRE_SPELLINGS, *REPLY_OPTIONS})
# Optional string fields whose empty value means "none" (the proto documents each).
_NONE_IS_EMPTY = frozenset({"preset"})
_STRUCT = struct_pb2.Struct.DESCRIPTOR.full_name


# ---- Struct values -------------------------------------------------------------------------


def dict_to_struct(values: Mapping[str, Any] | None, field: str) -> struct_pb2.Struct:
    """A Struct of JSON-like keyword values (numpy scalars and arrays become numbers and lists)."""
    struct = struct_pb2.Struct()
    if values:
        try:
            struct.update({key: _jsonable(value) for key, value in values.items()})
        except (TypeError, ValueError, AttributeError) as exc:
            raise invalid(field, f"values must be JSON-like: {exc}") from None
    return struct


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Struct back to keyword values; integral numbers become ints (JSON has only doubles).

    Walks the Struct itself (not ``MessageToDict``), so NaN and infinities reach the core's
    validation, which names the field, instead of failing inside the JSON converter.
    """
    return {key: _from_value(value) for key, value in struct.fields.items()}


def _from_value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if math.isfinite(number) and number.is_integer() else number
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
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


# ---- requests --------------------------------------------------------------------------------


def encode(message_class: type[M], arguments: Mapping[str, Any], rest: str | None = None) -> M:
    """A request message from keyword arguments named like its fields.

    Arguments that are not fields go into the Struct field ``rest`` (the scheduler overrides of
    ``sample_init_latents``, the overrides of ``get_schedule``), or are an error without one.
    ``None`` leaves a field unset.
    """
    message = message_class()
    fields = message_class.DESCRIPTOR.fields_by_name
    extra: dict[str, Any] = {}
    for name, value in arguments.items():
        field = None if name in WIRE_ONLY else fields.get(name)
        if field is None:
            if rest is None:
                raise invalid(name, f"is not an argument of {message_class.DESCRIPTOR.name}")
            extra[name] = value
        elif value is None:
            if name in _NONE_IS_EMPTY:
                setattr(message, name, "")
        else:
            _set(message, field, value)
    if extra and rest is not None:
        struct = getattr(message, rest)
        struct.update(dict_to_struct(extra, rest))
    return message


def _set(message: Message, field: Any, value: Any) -> None:
    name = field.name
    try:
        if field.message_type is not None:
            if field.message_type.full_name != _STRUCT:
                raise invalid(name, "is not a keyword argument")
            getattr(message, name).CopyFrom(dict_to_struct(value, name))
        elif field.is_repeated:
            items = [value] if _is_int(value) else list(value)
            encoded = [_scalar(field, item) for item in items]
            getattr(message, name).extend(encoded)
        else:
            setattr(message, name, _scalar(field, value))
    except (TypeError, ValueError, OverflowError) as exc:
        raise invalid(name, f"cannot send {value!r}: {exc}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _scalar(field: Any, value: Any) -> Any:
    if field.enum_type is not None:
        return _enum_number(field, value)
    if field.type == FieldDescriptor.TYPE_UINT64:
        return _uint64(field.name, value)
    if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32):
        if not _is_int(value):
            raise invalid(field.name, f"must be an integer, got {value!r}")
        return int(value)
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        if isinstance(value, (bool, np.bool_, str, bytes)):
            raise invalid(field.name, f"must be a number, got {value!r}")
        return float(value)
    return value


def _uint64(name: str, value: Any) -> int:
    """An int in [-2**63, 2**64) as uint64 (negatives as two's complement)."""
    if not _is_int(value):
        raise invalid(name, f"must be integers, got {value!r}")
    number = int(value)
    if not -(1 << 63) <= number < U64:
        raise invalid(name, f"{number} is outside the uint64 wire range [-2**63, 2**64)")
    return number % U64


def _enum_number(field: Any, value: Any) -> int:
    enum = field.enum_type
    if enum.full_name == pb.DataType.DESCRIPTOR.full_name:
        return int(tensors.dtype_to_enum(dtype_name(value)))
    if not isinstance(value, str):
        raise invalid(field.name, f"must be a name, got {value!r}")
    # Case, spaces, "-" and "_" do not matter in names (as in the core's resolver).
    key = _fold(value)
    number = next(
        (v for v in enum.values if v.number and _fold(enum_value_name(enum, v.name)) == key),
        None,
    )
    if number is None or not value:
        names = [enum_value_name(enum, v.name) for v in enum.values if v.number]
        raise invalid(field.name, f"unknown value {value!r}; expected one of {names}")
    return int(number.number)


def _fold(name: str) -> str:
    return "".join(c for c in name if c not in " _-.\t").lower()


def enum_prefix(enum: Any) -> str:
    """The prefix every value name of a buf-style enum starts with (``SEED_MODE_``)."""
    return enum.values_by_number[0].name.removesuffix("UNSPECIFIED")


def enum_value_name(enum: Any, name: str) -> str:
    """An enum value name as a keyword argument (``SEED_MODE_PER_ITEM`` -> ``per_item``)."""
    return name.removeprefix(enum_prefix(enum)).lower()


def schedule_request(arguments: Mapping[str, Any]) -> pb.GetScheduleRequest:
    """The request for the arguments of ``get_schedule`` (unknown names are overrides)."""
    return encode(pb.GetScheduleRequest, arguments, rest="overrides")


def latents_request(arguments: Mapping[str, Any]) -> pb.SampleInitLatentsRequest:
    """The request for the arguments of ``sample_init_latents`` (unknown names are scheduler
    overrides)."""
    return encode(pb.SampleInitLatentsRequest, arguments, rest="scheduler_overrides")


def given_seeds(seeds: Any) -> tuple[int, ...]:
    """The seeds a caller gave, as the local call reports them (``Latents.seeds``)."""
    if _is_int(seeds):
        return (int(seeds),)
    return tuple(int(s) for s in seeds)


# ---- replies ---------------------------------------------------------------------------------


_SCHEDULE_ARRAYS = ("timesteps", "sigmas", "betas", "alphas_cumprod")


def schedule_to_proto(schedule: Schedule, *, values: bool = False) -> pb.GetScheduleResponse:
    """A ``Schedule`` as a reply: arrays as tensors (with their ``values`` too when asked),
    everything else as JSON."""
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
            getattr(reply, name).CopyFrom(tensors.to_proto(np.asarray(array), values=values))
    handled = {*_SCHEDULE_ARRAYS, "scheduler", "init_noise_sigma", "config", "warnings"}
    reply.extras_json = json.dumps({k: v for k, v in data.items() if k not in handled})
    return reply


def schedule_from_proto(reply: pb.GetScheduleResponse) -> Schedule:
    """Rebuild the ``Schedule`` a reply describes."""
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


def latents_from_reply(reply: pb.SampleInitLatentsResponse, seeds: Sequence[int]) -> Latents:
    """Latents of a unary reply: the payload is read once and copied once (writable array)."""
    dtype = tensors.enum_to_dtype(reply.latents.dtype)
    array = tensors.from_proto(reply.latents, field="latents").copy()
    states = tuple(reply.generator_states) or None
    return Latents(array, reply.init_noise_sigma, tuple(seeds), dtype, states)


def latents_from_chunks(
    header: pb.LatentsHeader, chunks: Sequence[bytes], seeds: Sequence[int]
) -> Latents:
    """Latents of a stream: the header, then the payload chunks in order."""
    dtype = tensors.enum_to_dtype(header.dtype)
    buffer = np.empty(header.total_bytes, dtype=np.uint8)
    offset = 0
    for chunk in chunks:
        if offset + len(chunk) > header.total_bytes:
            raise ValueError(f"stream sent more than the {header.total_bytes} bytes announced")
        buffer[offset : offset + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        offset += len(chunk)
    if offset != header.total_bytes:
        raise ValueError(f"stream ended after {offset} of {header.total_bytes} bytes")
    array = buffer.view(tensors.storage_dtype(dtype)).reshape(tuple(header.shape))
    states = tuple(header.generator_states) or None
    return Latents(array, header.init_noise_sigma, tuple(seeds), dtype, states)


# ---- catalog ---------------------------------------------------------------------------------

_LAYOUT_OPTIONAL = ("vae_temporal_factor", "frames")
_PRESET_OPTIONAL = ("num_frames",)


def catalog_to_proto(catalog: Mapping[str, Any]) -> pb.GetCatalogResponse:
    """``sigmaserve.catalog()`` as a GetCatalogResponse."""
    reply = pb.GetCatalogResponse()
    for item in catalog["schedulers"]:
        reply.schedulers.add(**item)
    for item in catalog["aliases"]:
        alias = reply.aliases.add(name=item["name"], tool=item["tool"], scheduler=item["scheduler"])
        alias.options.CopyFrom(dict_to_struct(item["options"], "options"))
    for item in catalog["presets"]:
        plain = {
            k: v
            for k, v in item.items()
            if k not in ("layout", "aliases", "config") and v is not None
        }
        preset = reply.presets.add(**plain, aliases=item["aliases"])
        preset.config_json = json.dumps(item["config"])
        layout = {k: v for k, v in item["layout"].items() if v is not None}
        preset.layout.CopyFrom(pb.LatentLayout(**layout))
    for item in catalog["excluded"]:
        reply.excluded.add(**item)
    for item in catalog["families"]:
        reply.families.add(**item)
    for kind, names in catalog["names"].items():
        reply.names[kind].names.extend(names)
    return reply


def _optional(message: Message, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def catalog_from_proto(reply: pb.GetCatalogResponse) -> dict[str, Any]:
    """The mapping ``sigmaserve.catalog()`` returns, from a GetCatalogResponse."""
    presets = []
    for p in reply.presets:
        layout = {
            field.name: (
                _optional(p.layout, field.name)
                if field.name in _LAYOUT_OPTIONAL
                else getattr(p.layout, field.name)
            )
            for field in pb.LatentLayout.DESCRIPTOR.fields
        }
        preset: dict[str, Any] = {}
        for field in pb.CatalogPreset.DESCRIPTOR.fields:
            name = field.name
            if name == "layout":
                preset[name] = layout
            elif name == "aliases":
                preset[name] = list(p.aliases)
            elif name == "config_json":
                preset["config"] = json.loads(p.config_json or "{}")
            elif name in _PRESET_OPTIONAL:
                preset[name] = _optional(p, name)
            else:
                preset[name] = getattr(p, name)
        presets.append(preset)
    return {
        "schedulers": [
            {"name": s.name, "family": s.family, "tool": s.tool} for s in reply.schedulers
        ],
        "aliases": [
            {
                "name": a.name,
                "tool": a.tool,
                "scheduler": a.scheduler,
                # A Struct is a map: its keys arrive in any order; the library's are sorted.
                "options": dict(sorted(struct_to_dict(a.options).items())),
            }
            for a in reply.aliases
        ],
        "presets": presets,
        "excluded": [{"name": e.name, "reason": e.reason} for e in reply.excluded],
        "families": [{"name": f.name, "description": f.description} for f in reply.families],
        "names": {kind: list(names.names) for kind, names in reply.names.items()},
    }


__all__ = [
    "REPLY_OPTIONS",
    "WIRE_ONLY",
    "WIRE_SPELLINGS",
    "catalog_from_proto",
    "catalog_to_proto",
    "dict_to_struct",
    "encode",
    "enum_prefix",
    "enum_value_name",
    "given_seeds",
    "latents_from_chunks",
    "latents_from_reply",
    "latents_request",
    "schedule_from_proto",
    "schedule_request",
    "schedule_to_proto",
    "struct_to_dict",
]
