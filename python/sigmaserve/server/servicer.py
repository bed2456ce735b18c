"""NoiseService: thin async handlers over the local API; heavy work runs off the event loop.

The service is registered through a generic handler so the tensor replies skip protobuf
serialization: they are built as wire bytes, which any protobuf client parses as the declared
message. On the hot path (``wire.fast_latents_reply``) the core writes the scaled noise straight
into the reply's ``bytes`` (no copy of the tensor at all); requests with variation seeds,
batch_index or seed resize take the reference path (numpy array, then one copy by
``wire.encode_latents_reply``). StreamInitLatents continues single draws chunk by chunk in the
core (``_core.BatchStream``) where it can, so its memory stays bounded by a chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import grpc
import numpy as np

from sigmaserve import latents, tensors, wire
from sigmaserve.errors import InvalidArgumentError, TooLargeError, invalid
from sigmaserve.schedules import get_schedule
from sigmaserve.server.config import ServerConfig
from sigmaserve.server.errors import lenient, status_for
from sigmaserve.server.observability import Metrics
from sigmaserve.v1 import noise_service_pb2 as pb

T = TypeVar("T")
log = logging.getLogger("sigmaserve.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["NoiseService"].full_name


class NoiseServicer:
    """Implements ``sigmaserve.v1.NoiseService``."""

    def __init__(self, config: ServerConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self._zeros = b""
        self._sigmas = SigmaCache()
        # request fields other than the seeds -> the prepared fast reply (see _plan_key)
        self._plans: dict[tuple[Any, ...], wire.FastLatentsReply] = {}

    # ---- registration -------------------------------------------------------------------

    def generic_handler(self) -> grpc.GenericRpcHandler:
        """The service's method handlers; tensor replies are pre-serialized bytes."""
        unary = grpc.unary_unary_rpc_method_handler
        stream = grpc.unary_stream_rpc_method_handler
        handlers = {
            "GetSchedule": unary(
                self.GetSchedule,
                request_deserializer=lenient(pb.GetScheduleRequest),
                response_serializer=pb.GetScheduleResponse.SerializeToString,
            ),
            "SampleInitLatents": unary(
                self.SampleInitLatents,
                request_deserializer=lenient(pb.SampleInitLatentsRequest),
                response_serializer=None,  # bytes built by wire.encode_latents_reply
            ),
            "StreamInitLatents": stream(
                self.StreamInitLatents,
                request_deserializer=lenient(pb.SampleInitLatentsRequest),
                response_serializer=None,  # bytes built by wire.encode_chunk
            ),
            "GetServerInfo": unary(
                self.GetServerInfo,
                request_deserializer=lenient(pb.GetServerInfoRequest),
                response_serializer=pb.GetServerInfoResponse.SerializeToString,
            ),
            "Ping": unary(
                self.Ping,
                request_deserializer=lenient(pb.PingRequest),
                response_serializer=None,
            ),
        }
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    # ---- RPCs ---------------------------------------------------------------------------

    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetScheduleResponse:
        return await _answer(context, compute_schedule, request)

    async def SampleInitLatents(
        self, request: pb.SampleInitLatentsRequest, context: grpc.aio.ServicerContext
    ) -> bytes:
        if isinstance(request, pb.SampleInitLatentsRequest):
            plan = self._plans.get(_plan_key(request))
            if plan is not None:
                # Validated before and differing only in the seeds: encode them and fill.
                inline = plan.elements <= INLINE_ELEMENTS
                return await _answer(context, plan, request.seeds, inline=inline)
        return await _answer(context, self._unary_latents, request, inline=_is_small(request))

    async def GetServerInfo(
        self, request: pb.GetServerInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetServerInfoResponse:
        from sigmaserve import __version__

        c = self.config
        return pb.GetServerInfoResponse(
            version=__version__,
            max_elements=c.max_elements,
            max_unary_reply_bytes=c.max_unary_reply_bytes,
            stream_chunk_bytes=c.stream_chunk_bytes,
            max_concurrent_rpcs=c.max_concurrent_rpcs,
        )

    async def Ping(self, request: pb.PingRequest, context: grpc.aio.ServicerContext) -> bytes:
        size = request.reply_bytes
        if size < 0 or size > self.config.max_unary_reply_bytes:
            error = invalid(
                "reply_bytes", f"must be in [0, {self.config.max_unary_reply_bytes}], got {size}"
            )
            await context.abort_with_status(status_for(error))
        if size == 0:
            return b""
        if len(self._zeros) < size:
            self._zeros = bytes(size)
        # PingResponse.data = 1, wire type 2
        return b"".join((b"\x0a", wire.varint(size), memoryview(self._zeros)[:size]))

    async def StreamInitLatents(
        self, request: pb.SampleInitLatentsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        try:
            plan = await asyncio.to_thread(self._stream_plan, request)
        except Exception as exc:
            await context.abort_with_status(status_for(exc))
            raise
        header = pb.LatentsHeader(
            dtype=tensors.dtype_to_enum(plan.dtype),
            shape=list(plan.shape),
            init_noise_sigma=plan.init_noise_sigma,
            seeds=wire.seeds_to_wire(plan.seeds),
            total_bytes=plan.total_bytes,
            generator_states=list(plan.generator_states),
        )
        yield pb.LatentsChunk(header=header).SerializeToString()
        messages = plan.messages(self.config.stream_chunk_bytes)
        while True:
            _check_deadline(context)
            try:
                batch = await asyncio.to_thread(next, messages, None)
            except Exception as exc:
                await context.abort_with_status(status_for(exc))
                raise
            if batch is None:
                return
            for message in batch:
                yield message

    # ---- work (runs in worker threads) --------------------------------------------------

    def _unary_latents(self, request: pb.SampleInitLatentsRequest) -> bytes:
        kwargs = wire.latents_kwargs(request)
        dims = check_size(kwargs, self.config.max_elements, self.config.max_unary_reply_bytes)
        if _fast_path(kwargs):
            # The core writes the scaled noise straight into the reply's bytes.
            factor = self._sigmas.resolve(kwargs)
            seeds = [int(s) for s in kwargs["seeds"]]
            states: tuple[bytes, ...] = ()
            if kwargs["return_generator_states"]:
                states = latents.generator_states_after_draw(
                    dims,
                    seeds,
                    kwargs["seed_mode"],
                    kwargs["source"],
                    kwargs["dtype"],
                    kwargs["noise_options"],
                )
            if not states and seeds:
                self._remember_plan(request, kwargs, dims, factor)
            return wire.fast_latents_reply(
                dims=dims,
                seeds=seeds,
                seed_mode=kwargs["seed_mode"],
                source=kwargs["source"],
                dtype=kwargs["dtype"],
                init_noise_sigma=factor,
                noise_options=kwargs["noise_options"],
                generator_states=states,
                max_elements=self.config.max_elements,
            )
        return self._reference_latents(kwargs)

    def _remember_plan(
        self,
        request: pb.SampleInitLatentsRequest,
        kwargs: dict[str, Any],
        dims: tuple[int, ...],
        factor: float,
    ) -> None:
        """Keep the prepared fast reply of a request that passed every check but the seeds'
        (which the core makes again on each call); requests with a non-positive sigma or
        generator states are not kept."""
        if kwargs["return_generator_states"] or not factor > 0 or not math.isfinite(factor):
            return
        if request.HasField("sigma") and not (request.sigma > 0 and math.isfinite(request.sigma)):
            return
        try:
            plan = wire.FastLatentsReply.build(
                dims=dims,
                seed_mode=kwargs["seed_mode"],
                source=kwargs["source"],
                dtype=kwargs["dtype"],
                init_noise_sigma=factor,
                noise_options=kwargs["noise_options"],
                max_elements=self.config.max_elements,
            )
        except InvalidArgumentError:
            return  # fast_latents_reply reports it
        if plan is None:
            return
        plans = self._plans
        if len(plans) >= _PLAN_CACHE_SIZE:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                plans.pop(next(iter(plans)))
        plans[_plan_key(request)] = plan

    def _reference_latents(self, kwargs: dict[str, Any]) -> bytes:
        """The reference path: the local API's array, then one copy into the reply."""
        result = latents.sample_init_latents(**kwargs, max_elements=self.config.max_elements)
        return wire.encode_latents_reply(
            result.array,
            kwargs["dtype"],
            result.init_noise_sigma,
            result.seeds,
            result.generator_states or (),
        )

    def _stream_plan(self, request: pb.SampleInitLatentsRequest) -> StreamPlan:
        kwargs = wire.latents_kwargs(request)
        dims = check_size(kwargs, self.config.max_elements, None)
        plan = StreamPlan.build(kwargs, dims, self.config, self._sigmas)
        if kwargs["return_generator_states"]:
            plan.generator_states = latents.generator_states_after_draw(
                dims,
                plan.seeds,
                kwargs["seed_mode"],
                kwargs["source"],
                plan.dtype,
                kwargs["noise_options"],
            )
        return plan


class StreamPlan:
    """How StreamInitLatents produces a tensor: in groups of batch items, chunk by chunk of one
    draw, or whole.

    With one generator per item (``seed_mode="per_item"``, one seed per item, no extra noise
    options) item ``i`` is ``sample_init_latents`` of shape ``(1, C, H, W)`` and seed ``i``, so
    groups of items are drawn one after another and memory stays bounded by a group (about one
    chunk; items larger than a chunk are streamed like a batch-mode draw). With one generator
    for the whole tensor (``seed_mode="batch"``, one seed, no batch_index or variation seeds)
    the core continues one logical draw chunk by chunk (``_core.BatchStream``: the CPU stream in
    order, the counter-based CUDA and NV streams range by range), so memory stays bounded by a
    chunk for every source. Other modes draw the whole tensor first.
    """

    def __init__(
        self,
        kwargs: dict[str, Any],
        shape: tuple[int, ...],
        init_noise_sigma: float,
        seeds: list[int],
        group: int,
        whole: np.ndarray | None,
        max_elements: int,
    ) -> None:
        self.kwargs = {**kwargs, "return_generator_states": False}
        self.generator_states: tuple[bytes, ...] = ()
        self.shape = shape
        self.init_noise_sigma = init_noise_sigma
        self.seeds = seeds
        self.dtype: str = kwargs["dtype"]
        self.group = group
        self.whole = whole
        self.max_elements = max_elements
        self.total_bytes = math.prod(shape) * tensors.storage_dtype(self.dtype).itemsize
        self.batch_stream: Any = None  # a _core.BatchStream for one-draw batch mode

    @classmethod
    def build(
        cls,
        kwargs: dict[str, Any],
        dims: tuple[int, ...],
        config: ServerConfig,
        sigmas: SigmaCache | None = None,
    ) -> StreamPlan:
        seeds = [int(s) for s in kwargs["seeds"]]
        sigmas = sigmas or SigmaCache()
        options = kwargs["noise_options"]
        if (
            kwargs["seed_mode"] == "batch"
            and set(options) <= {"cpu_kernel", "gpu"}
            and len(seeds) == 1
        ):
            from sigmaserve import _core, noise

            factor = sigmas.resolve(kwargs)
            plan = cls(kwargs, dims, factor, seeds, 0, None, config.max_elements)
            plan.batch_stream = _core.BatchStream(
                seeds[0],
                math.prod(dims),
                plan.dtype,
                factor,
                noise._cpu_kernel(options.get("cpu_kernel")),
                source=kwargs["source"],
                gpu=noise._gpu(options.get("gpu")),
            )
            return plan
        itemwise = (
            kwargs["seed_mode"] == "per_item"
            and not kwargs["noise_options"]
            and len(dims) >= 2
            and len(seeds) == dims[0]
        )
        if not itemwise:
            result = latents.sample_init_latents(
                **{**kwargs, "return_generator_states": False}, max_elements=config.max_elements
            )
            return cls(
                kwargs,
                dims,
                result.init_noise_sigma,
                list(result.seeds),
                0,
                np.ascontiguousarray(result.array),
                config.max_elements,
            )
        factor = sigmas.resolve(kwargs)
        item_bytes = math.prod(dims[1:]) * tensors.storage_dtype(kwargs["dtype"]).itemsize
        group = max(1, config.stream_chunk_bytes // max(item_bytes, 1))
        return cls(kwargs, dims, factor, seeds, group, None, config.max_elements)

    def messages(self, step: int) -> Iterator[list[bytes]]:
        """Serialized LatentsChunk messages of at most ``step`` payload bytes, a few at a time
        (call ``next`` from a worker thread: each call does the work for its messages)."""
        if self.batch_stream is not None:
            while (message := self.batch_stream.next_chunk(step)) is not None:
                yield [message]
            return
        item = math.prod(self.shape[1:])
        itemsize = tensors.storage_dtype(self.dtype).itemsize
        if self.whole is None and item * itemsize > step:
            # Items larger than a chunk: each item is one fresh-generator draw, which the core
            # continues chunk by chunk like a batch-mode draw (memory bounded by a chunk).
            from sigmaserve import _core

            source = self.kwargs["source"]
            for seed in self.seeds:
                stream = _core.BatchStream(
                    seed, item, self.dtype, self.init_noise_sigma, source=source
                )
                while (message := stream.next_chunk(step)) is not None:
                    yield [message]
            return
        for piece in self.pieces():
            flat = piece.data.cast("B")
            yield [wire.encode_chunk(flat[o : o + step]) for o in range(0, len(flat), step)]

    def pieces(self) -> Iterator[np.ndarray]:
        """The tensor in C order, as consecutive arrays (call ``next`` from a worker thread)."""
        if self.whole is not None:
            yield self.whole
            return
        batch = self.shape[0]
        for start in range(0, batch, self.group):
            seeds = self.seeds[start : start + self.group]
            result = latents.sample_init_latents(
                shape=(len(seeds), *self.shape[1:]),
                seeds=seeds,
                seed_mode="per_item",
                source=self.kwargs["source"],
                dtype=self.dtype,
                sigma=self.init_noise_sigma,
                preset=self.kwargs["preset"],
                max_elements=self.max_elements,
            )
            yield np.ascontiguousarray(result.array)


_LATENTS_ARGS = frozenset(
    {
        "shape",
        "width",
        "height",
        "batch_size",
        "preset",
        "seeds",
        "seed_mode",
        "source",
        "dtype",
        "sigma",
        "scheduler",
        "num_inference_steps",
        "noise_options",
        "return_generator_states",
    }
)


_PLAN_CACHE_SIZE = 256


def _plan_key(request: pb.SampleInitLatentsRequest) -> tuple[Any, ...]:
    """Every field of a latents request but the seeds, as a hashable key (messages in their
    deterministic serialization; doubles and presence kept exact)."""
    has = request.HasField
    return (
        tuple(request.shape),
        request.width,
        request.height,
        request.batch_size,
        request.preset if has("preset") else None,
        request.seed_mode,
        request.source,
        request.dtype,
        request.sigma.hex() if has("sigma") else None,
        request.scheduler,
        request.num_inference_steps if has("num_inference_steps") else None,
        request.scheduler_overrides.SerializeToString(deterministic=True)
        if has("scheduler_overrides")
        else None,
        request.noise_options.SerializeToString(deterministic=True)
        if has("noise_options")
        else None,
        request.return_generator_states,
    )


def _fast_path(kwargs: dict[str, Any]) -> bool:
    """Whether the Rust-filled reply covers the request (else the reference path answers)."""
    options = kwargs["noise_options"]
    if options and not set(options) <= wire.FAST_NOISE_OPTIONS:
        return False
    # generator states are refused for a1111 by the reference path, after the noise checks
    return not (kwargs["return_generator_states"] and kwargs["seed_mode"] == "a1111")


class SigmaCache:
    """``latents.resolve_sigma`` with the schedule lookups of repeated identical scheduler
    arguments cached (the init_noise_sigma of a schedule depends only on those arguments)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._values: dict[tuple[Any, ...], float] = {}
        self._lock = threading.Lock()

    def resolve(self, kwargs: dict[str, Any]) -> float:
        overrides = {k: v for k, v in kwargs.items() if k not in _LATENTS_ARGS}
        args = (
            kwargs["sigma"],
            kwargs["scheduler"],
            kwargs["num_inference_steps"],
            kwargs["preset"],
            overrides,
        )
        if kwargs["sigma"] is not None or kwargs["scheduler"] is None:
            return latents.resolve_sigma(*args)  # no schedule involved
        try:
            key = (*args[1:4], json.dumps(overrides, sort_keys=True))
        except (TypeError, ValueError):
            return latents.resolve_sigma(*args)
        with self._lock:
            hit = self._values.get(key)
        if hit is not None:
            return hit
        value = latents.resolve_sigma(*args)
        with self._lock:
            if len(self._values) >= self._size:
                self._values.pop(next(iter(self._values)))
            self._values[key] = value
        return value


def compute_schedule(request: pb.GetScheduleRequest) -> pb.GetScheduleResponse:
    kwargs = wire.schedule_kwargs(request)
    overrides = kwargs.pop("overrides")
    return wire.schedule_to_proto(get_schedule(**kwargs, **overrides))


def check_size(kwargs: dict[str, Any], max_elements: int, max_bytes: int | None) -> tuple[int, ...]:
    """Refuse a tensor over the limits before anything is allocated; returns its shape."""
    dims = latents.resolve_shape(
        kwargs["shape"], kwargs["width"], kwargs["height"], kwargs["batch_size"], kwargs["preset"]
    )
    count = math.prod(dims)
    if count > max_elements:
        raise TooLargeError(
            f"shape: {dims} has {count} elements, over this server's limit of {max_elements}",
            "shape",
        )
    size = count * tensors.storage_dtype(kwargs["dtype"]).itemsize
    if max_bytes is not None and size > max_bytes:
        raise TooLargeError(
            f"shape: the reply would be {size} bytes, over the unary limit of {max_bytes}; "
            "use StreamInitLatents for tensors this large",
            "shape",
        )
    return tuple(int(d) for d in dims)


def _check_deadline(context: grpc.aio.ServicerContext) -> None:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise asyncio.CancelledError("deadline exceeded")


# Below this many elements (1 MiB of float32) a reply is computed on the event loop: the Rust
# call takes tens of microseconds, less than the hop to a worker thread.
INLINE_ELEMENTS = 1 << 18


def _is_small(request: pb.SampleInitLatentsRequest) -> bool:
    if request.scheduler or request.noise_options.fields:
        return False
    if request.shape:
        count = 1
        for d in request.shape:
            if d <= 0:
                return True  # refused at once
            count *= d
        return count <= INLINE_ELEMENTS
    pixels = max(request.width, 0) * max(request.height, 0) * max(request.batch_size, 1)
    return pixels <= INLINE_ELEMENTS * 4  # at most 16 channels at 1/8 scale


async def _answer(
    context: grpc.aio.ServicerContext, work: Callable[..., T], *args: Any, inline: bool = False
) -> T:
    """Run ``work`` in a worker thread (the core releases the GIL) and map failures to statuses.

    A call whose deadline has already passed is not started. Input errors become
    INVALID_ARGUMENT / RESOURCE_EXHAUSTED; anything else INTERNAL with a generic message.
    """
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the work")
    started = time.perf_counter()
    try:
        return work(*args) if inline else await asyncio.to_thread(work, *args)
    except (InvalidArgumentError, ValueError, TypeError, OverflowError) as exc:
        if not isinstance(exc, InvalidArgumentError):
            exc = InvalidArgumentError(str(exc))
        await context.abort_with_status(status_for(exc))
        raise
    except Exception as exc:
        log.exception("internal error after %.3f s", time.perf_counter() - started)
        await context.abort_with_status(status_for(exc))
        raise
    except BaseException as exc:  # a Rust panic (pyo3 PanicException) is a BaseException
        if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
            raise
        log.error("panic in the core", exc_info=exc)
        await context.abort_with_status(status_for(RuntimeError("core panic")))
        raise
