"""NoiseService: a thin adapter from gRPC messages to the service layer (``service.py``).

Requests are decoded generically (``protocol.arguments``) into the keyword arguments the core
validates; tensor replies are pre-serialized bytes whose payload the core writes in place, so
the generic handler registers them without a response serializer. Request ids, metrics, auth,
the concurrency limits and the mapping of exceptions to statuses are interceptors
(``interceptors.py``): handlers raise the library's errors and never build a status themselves.
Work that may take more than a few tens of microseconds runs in a worker thread (the core
releases the GIL).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc

from sigmaserve import _core, tensors, wire
from sigmaserve.errors import invalid
from sigmaserve.server import protocol
from sigmaserve.server.config import ServerConfig
from sigmaserve.server.errors import lenient
from sigmaserve.server.service import LatentsService, Reservation
from sigmaserve.v1 import noise_service_pb2 as pb

T = TypeVar("T")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["NoiseService"].full_name


class NoiseServicer:
    """Implements ``sigmaserve.v1.NoiseService`` over a :class:`LatentsService`."""

    def __init__(self, config: ServerConfig, service: LatentsService | None = None) -> None:
        self.config = config
        self.service = service or LatentsService(config)
        self._zeros = b""
        self._catalog: bytes | None = None

    def generic_handler(self) -> grpc.GenericRpcHandler:
        """The service's method handlers; tensor replies are pre-serialized bytes."""
        unary = grpc.unary_unary_rpc_method_handler
        stream = grpc.unary_stream_rpc_method_handler
        handlers = {
            "GetSchedule": unary(
                self.GetSchedule,
                request_deserializer=lenient(pb.GetScheduleRequest),
                response_serializer=None,  # serialized in the worker thread
            ),
            "SampleInitLatents": unary(
                self.SampleInitLatents,
                request_deserializer=lenient(pb.SampleInitLatentsRequest),
                response_serializer=None,  # bytes written by the core
            ),
            "StreamInitLatents": stream(
                self.StreamInitLatents,
                request_deserializer=lenient(pb.SampleInitLatentsRequest),
                response_serializer=None,  # bytes written by the core
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
            "GetCatalog": unary(
                self.GetCatalog,
                request_deserializer=lenient(pb.GetCatalogRequest),
                response_serializer=None,  # serialized once, the catalog is static
            ),
        }
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    # ---- RPCs ---------------------------------------------------------------------------

    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: grpc.aio.ServicerContext
    ) -> bytes:
        values = protocol.wants_values(request)

        def work() -> tuple[bytes, Reservation]:
            schedule, reservation = self.service.schedule(protocol.arguments(request))
            try:
                reply = wire.schedule_to_proto(schedule, values=values)
                return reply.SerializeToString(), reservation
            except BaseException:
                reservation.release()
                raise

        reply, reservation = await run(context, work)
        context.add_done_callback(reservation.release)
        return reply

    async def SampleInitLatents(
        self, request: pb.SampleInitLatentsRequest, context: grpc.aio.ServicerContext
    ) -> bytes:
        latents = await self._latents_request(request, context)
        values = protocol.wants_values(request)
        if values:
            tensors.check_value_count(latents.numel)
        # Small replies are computed on the event loop: cheaper than the hop to a thread.
        reply = await run(context, self.service.unary, latents, inline=latents.is_small)
        context.add_done_callback(reply.reservation.release)
        if values:
            return reply.data + protocol.latents_values(reply.data, latents)
        return reply.data

    async def StreamInitLatents(
        self, request: pb.SampleInitLatentsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        if protocol.wants_values(request):
            raise invalid("tensor_values", "StreamInitLatents sends bytes; ask SampleInitLatents")
        latents = await self._latents_request(request, context)
        stream = await run(context, self.service.stream, latents)
        context.add_done_callback(stream.reservation.release)
        yield stream.header
        while True:
            message = await run(context, next, stream.messages, None)
            if message is None:
                return
            yield message

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
        limit = self.config.max_unary_reply_bytes
        if not 0 <= size <= limit:
            raise invalid("reply_bytes", f"must be in [0, {limit}], got {size}")
        if len(self._zeros) < size:
            self._zeros = bytes(size)
        return protocol.ping_reply(memoryview(self._zeros)[:size])

    async def GetCatalog(
        self, request: pb.GetCatalogRequest, context: grpc.aio.ServicerContext
    ) -> bytes:
        if self._catalog is None:
            from sigmaserve.catalog import catalog

            self._catalog = wire.catalog_to_proto(catalog()).SerializeToString()
        return self._catalog

    # ---- helpers --------------------------------------------------------------------------

    async def _latents_request(
        self, request: pb.SampleInitLatentsRequest, context: grpc.aio.ServicerContext
    ) -> _core.LatentsRequest:
        """The validated request: a kept plan with new seeds on the event loop, else validated
        (and its schedule computed) in a worker thread."""
        arguments = protocol.arguments(request)
        key = plan_key(request)
        cached = self.service.cached_request(arguments, key)
        if cached is not None:
            return cached
        return await run(context, self.service.latents_request, arguments, key)


def plan_key(request: pb.SampleInitLatentsRequest) -> bytes:
    """Every field of a latents request but the seeds (in either spelling), in protobuf's
    deterministic encoding."""
    rest = pb.SampleInitLatentsRequest()
    rest.CopyFrom(request)
    rest.ClearField("seeds")
    rest.ClearField("signed_seeds")
    return rest.SerializeToString(deterministic=True)


async def run(
    context: grpc.aio.ServicerContext, work: Callable[..., T], *args: Any, inline: bool = False
) -> T:
    """``work(*args)`` on the event loop (``inline``) or in a worker thread, unless the caller's
    deadline has already passed. Exceptions propagate to the interceptor that maps them."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the work")
    if inline:
        return work(*args)
    return await asyncio.to_thread(work, *args)


__all__ = ["SERVICE_NAME", "NoiseServicer", "plan_key", "run"]
