"""Open Inference Protocol facade (``inference.GRPCInferenceService``) over the same work.

Two models, so stock tritonclient / KServe clients can call the service:

``init_latents``
    inputs ``SHAPE`` INT64[n] and ``SEED`` INT64/UINT64[k], optional ``SIGMA`` FP32/FP64[1];
    parameters ``seed_mode``, ``source``, ``dtype``, ``scheduler``, ``num_inference_steps``,
    ``preset`` (strings / ints); output ``LATENTS`` (FP32, FP16, FP64 or BF16) and
    ``INIT_NOISE_SIGMA`` FP64[1].
``schedule``
    input ``NUM_STEPS`` INT64[1], optional ``SCHEDULER`` BYTES[1]; parameters ``scheduler``,
    ``preset``; outputs ``TIMESTEPS``, ``SIGMAS`` (when the scheduler has them) and
    ``INIT_NOISE_SIGMA`` FP64[1].

Outputs travel in ``raw_output_contents`` (what tritonclient's ``as_numpy`` reads).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import grpc
import numpy as np

from sigmaserve import latents
from sigmaserve.errors import InvalidArgumentError, invalid
from sigmaserve.schedules import get_schedule
from sigmaserve.server.config import ServerConfig
from sigmaserve.server.errors import lenient, status_for
from sigmaserve.server.observability import Metrics
from sigmaserve.server.servicer import check_size

SERVICE_NAME = "inference.GRPCInferenceService"
MODELS = ("init_latents", "schedule")

_OIP_DTYPES: dict[str, tuple[str, np.dtype[Any]]] = {
    "float32": ("FP32", np.dtype("<f4")),
    "float64": ("FP64", np.dtype("<f8")),
    "float16": ("FP16", np.dtype("<f2")),
    "bfloat16": ("BF16", np.dtype("<u2")),
    "int64": ("INT64", np.dtype("<i8")),
}
_INPUT_DTYPES: dict[str, np.dtype[Any]] = {
    "INT64": np.dtype("<i8"),
    "UINT64": np.dtype("<u8"),
    "INT32": np.dtype("<i4"),
    "UINT32": np.dtype("<u4"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_TYPED_FIELDS = {
    "INT64": "int64_contents",
    "UINT64": "uint64_contents",
    "INT32": "int_contents",
    "UINT32": "uint_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def _pb() -> Any:
    from sigmaserve._oip import open_inference_grpc_pb2

    return open_inference_grpc_pb2


class OipServicer:
    """The OIP handlers; ``ready`` follows the server's health (False while draining)."""

    def __init__(self, config: ServerConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.ready = True

    def generic_handler(self) -> grpc.GenericRpcHandler:
        pb = _pb()
        methods = {
            "ServerLive": (pb.ServerLiveRequest, self.ServerLive),
            "ServerReady": (pb.ServerReadyRequest, self.ServerReady),
            "ModelReady": (pb.ModelReadyRequest, self.ModelReady),
            "ServerMetadata": (pb.ServerMetadataRequest, self.ServerMetadata),
            "ModelMetadata": (pb.ModelMetadataRequest, self.ModelMetadata),
            "ModelInfer": (pb.ModelInferRequest, self.ModelInfer),
        }
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                method,
                request_deserializer=lenient(request),
                response_serializer=lambda reply: reply.SerializeToString(),
            )
            for name, (request, method) in methods.items()
        }
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return _pb().ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return _pb().ServerReadyResponse(ready=self.ready)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        await self._known_model(request.name, context)
        return _pb().ModelReadyResponse(ready=self.ready)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        from sigmaserve import __version__

        return _pb().ServerMetadataResponse(name="sigmaserve", version=__version__, extensions=[])

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        await self._known_model(request.name, context)
        pb = _pb()
        meta = pb.ModelMetadataResponse.TensorMetadata
        if request.name == "init_latents":
            inputs = [
                meta(name="SHAPE", datatype="INT64", shape=[-1]),
                meta(name="SEED", datatype="INT64", shape=[-1]),
                meta(name="SIGMA", datatype="FP64", shape=[1]),
            ]
            outputs = [
                meta(name="LATENTS", datatype="FP32", shape=[-1, -1, -1, -1]),
                meta(name="INIT_NOISE_SIGMA", datatype="FP64", shape=[1]),
            ]
        else:
            inputs = [
                meta(name="NUM_STEPS", datatype="INT64", shape=[1]),
                meta(name="SCHEDULER", datatype="BYTES", shape=[1]),
            ]
            outputs = [
                meta(name="TIMESTEPS", datatype="FP32", shape=[-1]),
                meta(name="SIGMAS", datatype="FP32", shape=[-1]),
                meta(name="INIT_NOISE_SIGMA", datatype="FP64", shape=[1]),
            ]
        return pb.ModelMetadataResponse(
            name=request.name,
            versions=["1"],
            platform="sigmaserve",
            inputs=inputs,
            outputs=outputs,
        )

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._known_model(request.model_name, context)
        if not self.ready:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "server is shutting down")
        work = self._infer_latents if request.model_name == "init_latents" else self._infer_schedule
        try:
            outputs = await asyncio.to_thread(work, request)
        except (ValueError, TypeError, OverflowError) as exc:
            if not isinstance(exc, InvalidArgumentError):
                exc = InvalidArgumentError(str(exc))
            await context.abort_with_status(status_for(exc))
            raise
        except Exception as exc:
            await context.abort_with_status(status_for(exc))
            raise
        pb = _pb()
        reply = pb.ModelInferResponse(
            model_name=request.model_name, model_version="1", id=request.id
        )
        wanted = {o.name for o in request.outputs}
        raw = []
        for name, (datatype, shape, data) in outputs.items():
            if wanted and name not in wanted:
                continue
            reply.outputs.add(name=name, datatype=datatype, shape=list(shape))
            raw.append(data)
        reply.raw_output_contents.extend(raw)
        return reply

    async def _known_model(self, name: str, context: grpc.aio.ServicerContext) -> None:
        if name not in MODELS:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"model_name: unknown model {name!r}; serving {MODELS}"
            )

    # ---- models (worker threads) ----------------------------------------------------------

    def _infer_latents(self, request: Any) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
        inputs = _inputs(request)
        params = _params(request)
        shape = _required(inputs, "SHAPE")
        seeds = _required(inputs, "SEED")
        kwargs: dict[str, Any] = {
            "shape": [int(d) for d in shape.reshape(-1)],
            "width": None,
            "height": None,
            "batch_size": 1,
            "preset": str(params.pop("preset", "sd15")) or None,
            "seeds": [int(s) for s in seeds.reshape(-1)],
            "seed_mode": str(params.pop("seed_mode", "per_item")),
            "source": str(params.pop("source", "cpu")),
            "dtype": str(params.pop("dtype", "float32")),
            "sigma": None,
            "scheduler": params.pop("scheduler", None) or None,
            "num_inference_steps": params.pop("num_inference_steps", None),
            "noise_options": {},
        }
        if "SIGMA" in inputs:
            kwargs["sigma"] = float(inputs["SIGMA"].reshape(-1)[0])
        if kwargs["dtype"] not in ("float32", "float64", "float16", "bfloat16"):
            raise invalid("dtype", f"unsupported dtype {kwargs['dtype']!r}")
        for key in ("headers", "binary_data_output", "sequence_id", "priority", "timeout"):
            params.pop(key, None)
        check_size(kwargs, self.config.max_elements, self.config.max_unary_reply_bytes)
        result = latents.sample_init_latents(
            **kwargs, **params, max_elements=self.config.max_elements
        )
        datatype, np_dtype = _OIP_DTYPES[kwargs["dtype"]]
        data = np.ascontiguousarray(result.array, dtype=np_dtype)
        return {
            "LATENTS": (datatype, data.shape, data.tobytes()),
            "INIT_NOISE_SIGMA": (
                "FP64",
                (1,),
                np.array([result.init_noise_sigma], "<f8").tobytes(),
            ),
        }

    def _infer_schedule(self, request: Any) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
        inputs = _inputs(request)
        params = _params(request)
        steps = int(_required(inputs, "NUM_STEPS").reshape(-1)[0])
        scheduler = params.pop("scheduler", "EulerDiscreteScheduler")
        if "SCHEDULER" in inputs:
            scheduler = inputs["SCHEDULER"][0]
        preset = params.pop("preset", "sd15") or None
        for key in ("headers", "binary_data_output", "sequence_id", "priority", "timeout"):
            params.pop(key, None)
        schedule = get_schedule(str(scheduler), steps, preset=preset, **params)
        out: dict[str, tuple[str, tuple[int, ...], bytes]] = {}
        for name, array in (("TIMESTEPS", schedule.timesteps), ("SIGMAS", schedule.sigmas)):
            if array is None:
                continue
            array = np.asarray(array)
            dtype_name = "int64" if array.dtype.kind in "iu" else str(array.dtype)
            datatype, np_dtype = _OIP_DTYPES.get(dtype_name, ("FP64", np.dtype("<f8")))
            data = np.ascontiguousarray(array, dtype=np_dtype)
            out[name] = (datatype, data.shape, data.tobytes())
        sigma = np.array([schedule.init_noise_sigma], "<f8")
        out["INIT_NOISE_SIGMA"] = ("FP64", (1,), sigma.tobytes())
        return out


def _params(request: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, param in request.parameters.items():
        kind = param.WhichOneof("parameter_choice")
        values[key] = getattr(param, kind) if kind else None
    return values


def _required(inputs: dict[str, Any], name: str) -> Any:
    if name not in inputs:
        raise invalid("inputs", f"input {name} is required")
    return inputs[name]


def _inputs(request: Any) -> dict[str, Any]:
    """Input tensors by name, from raw_input_contents or the typed contents."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise invalid("raw_input_contents", f"{len(raw)} entries for {len(request.inputs)} inputs")
    out: dict[str, Any] = {}
    for index, tensor in enumerate(request.inputs):
        field = f"inputs[{index}]"
        shape = tuple(int(d) for d in tensor.shape)
        if any(d < 0 for d in shape) or len(shape) > 8:
            raise invalid(f"{field}.shape", f"invalid shape {shape}")
        count = int(np.prod(shape, dtype=np.float64)) if shape else 1
        if count > 1 << 16:
            raise invalid(f"{field}.shape", f"{count} elements is too many for an input")
        if tensor.datatype == "BYTES":
            out[tensor.name] = (
                _bytes_elements(raw[index], field)
                if raw
                else [b.decode("utf-8", "replace") for b in tensor.contents.bytes_contents]
            )
            continue
        np_dtype = _INPUT_DTYPES.get(tensor.datatype)
        if np_dtype is None:
            raise invalid(f"{field}.datatype", f"unsupported datatype {tensor.datatype!r}")
        if raw:
            data = raw[index]
            if len(data) != count * np_dtype.itemsize:
                raise invalid(f"{field}", f"{len(data)} bytes do not fit shape {shape}")
            array = np.frombuffer(data, dtype=np_dtype)
        else:
            array = np.asarray(
                getattr(tensor.contents, _TYPED_FIELDS[tensor.datatype]), dtype=np_dtype
            )
            if array.size != count:
                raise invalid(f"{field}", f"{array.size} values do not fit shape {shape}")
        out[tensor.name] = array.reshape(shape)
    return out


def _bytes_elements(data: bytes, field: str) -> list[str]:
    """Triton's BYTES layout: each element a 4-byte little-endian length, then the bytes."""
    items = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise invalid(field, "truncated BYTES element")
        (size,) = struct.unpack_from("<I", data, offset)
        offset += 4
        if offset + size > len(data):
            raise invalid(field, "truncated BYTES element")
        items.append(data[offset : offset + size].decode("utf-8", "replace"))
        offset += size
    return items
