"""NoiseService: thin async handlers over the local API; heavy work runs off the event loop."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc

from sigmaserve import latents, tensors, wire
from sigmaserve.errors import TooLargeError
from sigmaserve.schedules import get_schedule
from sigmaserve.server.config import ServerConfig
from sigmaserve.server.errors import status_for
from sigmaserve.v1 import noise_service_pb2 as pb
from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc

T = TypeVar("T")


class NoiseServicer(pb_grpc.NoiseServiceServicer):
    """Implements ``sigmaserve.v1.NoiseService``."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config

    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetScheduleResponse:
        return await _answer(context, compute_schedule, request)

    async def SampleInitLatents(
        self, request: pb.SampleInitLatentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SampleInitLatentsResponse:
        return await _answer(context, self._unary_latents, request)

    async def StreamInitLatents(
        self, request: pb.SampleInitLatentsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.LatentsChunk]:
        sampled = await _answer(context, self._sample, request, None)
        result, dtype = sampled
        array = result.array
        yield pb.LatentsChunk(
            header=pb.LatentsHeader(
                dtype=tensors.dtype_to_enum(dtype),
                shape=list(array.shape),
                init_noise_sigma=result.init_noise_sigma,
                seeds=wire.seeds_to_wire(result.seeds),
                total_bytes=array.nbytes,
            )
        )
        flat = memoryview(array.reshape(-1)).cast("B")
        step = self.config.stream_chunk_bytes
        for start in range(0, len(flat), step):
            yield pb.LatentsChunk(data=flat[start : start + step].tobytes())

    def _unary_latents(self, request: pb.SampleInitLatentsRequest) -> pb.SampleInitLatentsResponse:
        result, dtype = self._sample(request, self.config.max_unary_reply_bytes)
        return pb.SampleInitLatentsResponse(
            init_noise_sigma=result.init_noise_sigma,
            seeds=wire.seeds_to_wire(result.seeds),
            latents=tensors.to_proto(result.array, dtype),
        )

    def _sample(
        self, request: pb.SampleInitLatentsRequest, max_bytes: int | None
    ) -> tuple[latents.Latents, str]:
        kwargs = wire.latents_kwargs(request)
        check_size(kwargs, self.config.max_elements, max_bytes)
        result = latents.sample_init_latents(**kwargs, max_elements=self.config.max_elements)
        return result, kwargs["dtype"]


def compute_schedule(request: pb.GetScheduleRequest) -> pb.GetScheduleResponse:
    kwargs = wire.schedule_kwargs(request)
    overrides = kwargs.pop("overrides")
    return wire.schedule_to_proto(get_schedule(**kwargs, **overrides))


def check_size(kwargs: dict[str, Any], max_elements: int, max_bytes: int | None) -> None:
    """Refuse a tensor over the limits before anything is allocated."""
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


async def _answer(
    context: grpc.aio.ServicerContext, work: Callable[..., T], *args: Any
) -> T:
    """Run ``work`` in a worker thread (the core releases the GIL) and map failures to statuses."""
    try:
        return await asyncio.to_thread(work, *args)
    except Exception as exc:
        await context.abort_with_status(status_for(exc))
        raise  # abort_with_status always raises; this keeps type checkers informed
