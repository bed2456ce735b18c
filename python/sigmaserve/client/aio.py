"""asyncio client for ``sigmaserve.v1.NoiseService``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import grpc
import grpc.aio

from sigmaserve.client.common import (
    UNSET,
    ClientCore,
    ServerInfo,
    is_unavailable,
    needs_streaming,
    reissue_delays,
    translate_error,
)
from sigmaserve.results import Latents, Schedule
from sigmaserve.v1 import noise_service_pb2 as pb
from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc

T = TypeVar("T")


class AsyncClient:
    """The asyncio twin of :class:`sigmaserve.Client` (``async with AsyncClient(...)``):
    ``get_schedule`` and ``sample_init_latents`` over gRPC, returning what the local calls do.

    ``target`` is any gRPC target: ``"host:port"``, ``"ipv4:10.0.0.1:50051,10.0.0.2:50051"``
    or ``"dns:///noise.svc:50051"`` (round_robin over all addresses, retries on UNAVAILABLE).
    ``options``: ``timeout``, ``stream_timeout``, ``credentials`` or the PEM files
    ``root_certificates``/``private_key``/``certificate_chain``, ``token``,
    ``max_receive_message_length``, ``stream_threshold_bytes`` (larger tensors are fetched with
    StreamInitLatents) and raw channel ``options``.
    """

    def __init__(self, target: Any, **options: Any) -> None:
        self._core = core = ClientCore(target, **options)
        self._channel = (
            grpc.aio.secure_channel(core.target, core.credentials, options=core.options)
            if core.credentials is not None
            else grpc.aio.insecure_channel(core.target, options=core.options)
        )
        self._stub = pb_grpc.NoiseServiceStub(self._channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def get_schedule(
        self,
        scheduler: Any = UNSET,
        num_inference_steps: Any = UNSET,
        *,
        preset: Any = UNSET,
        width: Any = UNSET,
        height: Any = UNSET,
        num_frames: Any = UNSET,
        pipeline: Any = UNSET,
        config: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Schedule:
        """:func:`sigmaserve.get_schedule` on the server (same defaults, same result)."""
        named = {
            "scheduler": scheduler,
            "num_inference_steps": num_inference_steps,
            "preset": preset,
            "width": width,
            "height": height,
            "num_frames": num_frames,
            "pipeline": pipeline,
        }
        request = self._core.schedule_request(named, config, overrides)
        return self._core.schedule_result(await self._call(self._stub.GetSchedule, request))

    async def catalog(self) -> dict[str, Any]:
        """:func:`sigmaserve.catalog` of the server (``GetCatalog``)."""
        reply = await self._call(self._stub.GetCatalog, pb.GetCatalogRequest())
        return self._core.catalog_result(reply)

    async def sample_init_latents(self, *, seeds: Any, **arguments: Any) -> Latents:
        """:func:`sigmaserve.sample_init_latents` on the server (same arguments, same result)."""
        request = self._core.latents_request({"seeds": seeds, **arguments})
        if self._core.wants_stream(request):
            return await self._stream(request, seeds)
        try:
            reply = await self._reissued(
                lambda: self._stub.SampleInitLatents(
                    request, timeout=self._core.timeout, metadata=self._core.metadata
                )
            )
        except grpc.RpcError as err:
            if needs_streaming(err):  # the server's unary limit is below our threshold
                return await self._stream(request, seeds)
            raise translate_error(err) from None
        return self._core.latents_result(reply, seeds)

    async def stream_init_latents(self, *, seeds: Any, **arguments: Any) -> Latents:
        """:meth:`sample_init_latents` through StreamInitLatents, whatever the size."""
        return await self._stream(self._core.latents_request({"seeds": seeds, **arguments}), seeds)

    async def sample_init_latents_torch(
        self, *, seeds: Any, device: Any = None, torch_dtype: Any = None, **arguments: Any
    ) -> Any:
        """``sample_init_latents(...).to_torch(device, torch_dtype)``: a torch tensor.

        For a CUDA device the bytes are copied once into pinned host memory and moved with a
        non-blocking copy; bfloat16 comes back as ``torch.bfloat16``.
        """
        result = await self.sample_init_latents(seeds=seeds, **arguments)
        return result.to_torch(device=device, dtype=torch_dtype)

    async def server_info(self) -> ServerInfo:
        """The server's version and limits."""
        reply = await self._call(self._stub.GetServerInfo, pb.GetServerInfoRequest())
        return ServerInfo.from_proto(reply)

    async def _stream(self, request: pb.SampleInitLatentsRequest, seeds: Any) -> Latents:
        async def read() -> list[pb.LatentsChunk]:
            call = self._stub.StreamInitLatents(
                request, timeout=self._core.stream_timeout, metadata=self._core.metadata
            )
            return [chunk async for chunk in call]

        try:
            chunks = await self._reissued(read)
        except grpc.RpcError as err:
            raise translate_error(err) from None
        return self._core.stream_result(chunks, seeds)

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await self._reissued(
                lambda: method(request, timeout=self._core.timeout, metadata=self._core.metadata)
            )
        except grpc.RpcError as err:
            raise translate_error(err) from None

    @staticmethod
    async def _reissued(call: Callable[[], Awaitable[T]]) -> T:
        """``await call()``, reissued while a lost connection cuts it
        (``common.REISSUE_DELAYS_S``)."""
        delays = reissue_delays()
        while True:
            try:
                return await call()
            except grpc.RpcError as err:
                delay = next(delays)
                if delay is None or not is_unavailable(err):
                    raise
                await asyncio.sleep(delay)


__all__ = ["AsyncClient"]
