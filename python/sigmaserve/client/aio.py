"""asyncio client for ``sigmaserve.v1.NoiseService``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import grpc.aio

from sigmaserve import wire
from sigmaserve.client import common
from sigmaserve.latents import Latents, seed_list
from sigmaserve.schedules import Schedule
from sigmaserve.v1 import noise_service_pb2 as pb
from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc


class AsyncClient:
    """The asyncio twin of :class:`sigmaserve.Client` (``async with AsyncClient(...)``)."""

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        timeout: float | None = common.DEFAULT_TIMEOUT,
        stream_timeout: float | None = common.DEFAULT_STREAM_TIMEOUT,
        credentials: grpc.ChannelCredentials | None = None,
        root_certificates: str | bytes | None = None,
        private_key: str | bytes | None = None,
        certificate_chain: str | bytes | None = None,
        token: str | None = None,
        max_receive_message_length: int = common.DEFAULT_MAX_RECEIVE,
        stream_threshold_bytes: int = 32 * common.MIB,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        opts = common.channel_options(max_receive_message_length, options)
        target = common.resolve_target(target)
        credentials = common.channel_credentials(
            credentials, root_certificates, private_key, certificate_chain
        )
        self._channel = (
            grpc.aio.secure_channel(target, credentials, options=opts)
            if credentials is not None
            else grpc.aio.insecure_channel(target, options=opts)
        )
        self._stub = pb_grpc.NoiseServiceStub(self._channel)
        self._timeout = timeout
        self._stream_timeout = stream_timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._stream_threshold = stream_threshold_bytes

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def get_schedule(
        self,
        scheduler: str = "EulerDiscreteScheduler",
        num_inference_steps: int | None = 50,
        *,
        preset: str | None = wire.DEFAULT_PRESET,
        config: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Schedule:
        request = wire.schedule_request(scheduler, num_inference_steps, preset, config, overrides)
        reply = await self._call(self._stub.GetSchedule, request)
        return wire.schedule_from_proto(reply)

    async def sample_init_latents(self, *, seeds: int | Sequence[int], **kwargs: Any) -> Latents:
        request = wire.latents_request(seeds=seeds, **kwargs)
        size = common.expected_reply_bytes(request)
        if size is not None and size > self._stream_threshold:
            return await self.stream_init_latents(seeds=seeds, **kwargs)
        try:
            reply = await self._stub.SampleInitLatents(
                request, timeout=self._timeout, metadata=self._metadata
            )
        except grpc.RpcError as err:
            if common.needs_streaming(err):  # the server's unary limit is below our threshold
                return await self.stream_init_latents(seeds=seeds, **kwargs)
            raise common.translate_error(err) from None
        return common.latents_from_reply(reply, seed_list(seeds))

    async def sample_init_latents_torch(
        self,
        *,
        seeds: int | Sequence[int],
        device: Any = None,
        torch_dtype: Any = None,
        **kwargs: Any,
    ) -> Any:
        """``sample_init_latents(...).to_torch(device, torch_dtype)``: a torch tensor.

        For a CUDA device the bytes are copied once into pinned host memory and moved with a
        non-blocking copy; bfloat16 comes back as ``torch.bfloat16``.
        """
        result = await self.sample_init_latents(seeds=seeds, **kwargs)
        return result.to_torch(device=device, dtype=torch_dtype)

    async def server_info(self) -> Any:
        """The server's version and limits (``GetServerInfoResponse``)."""
        return await self._call(self._stub.GetServerInfo, pb.GetServerInfoRequest())

    async def stream_init_latents(self, *, seeds: int | Sequence[int], **kwargs: Any) -> Latents:
        request = wire.latents_request(seeds=seeds, **kwargs)
        header = None
        chunks: list[bytes] = []
        try:
            call = self._stub.StreamInitLatents(
                request, timeout=self._stream_timeout, metadata=self._metadata
            )
            async for chunk in call:
                if chunk.HasField("header"):
                    header = chunk.header
                else:
                    chunks.append(chunk.data)
        except grpc.RpcError as err:
            raise common.translate_error(err) from None
        if header is None:
            raise common.RemoteError("stream ended without a header", grpc.StatusCode.DATA_LOSS)
        return common.latents_from_chunks(header, chunks, seed_list(seeds))

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise common.translate_error(err) from None
