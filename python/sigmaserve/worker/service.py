"""``sigmaserve.v1.WorkerService`` over grpc.aio, with health and reflection on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sigmaserve import tensors, wire
from sigmaserve.errors import InvalidArgumentError
from sigmaserve.server import protocol
from sigmaserve.server.app import ping_policy, running_in_thread
from sigmaserve.server.auth import BearerTokenInterceptor
from sigmaserve.server.config import ServerConfig
from sigmaserve.server.errors import status_for
from sigmaserve.v1 import noise_service_pb2 as noise_pb
from sigmaserve.v1 import worker_service_pb2 as pb
from sigmaserve.v1 import worker_service_pb2_grpc as pb_grpc
from sigmaserve.worker.engine import Generation, Worker

log = logging.getLogger("sigmaserve.worker")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["WorkerService"].full_name
U64 = 1 << 64


def request_kwargs(request: pb.GenerateRequest) -> dict[str, Any]:
    """``Worker.generate`` keyword arguments from a GenerateRequest, decoded as NoiseService
    decodes its requests (``protocol.arguments``: enums by name, ``signed_seeds`` as ``seeds``,
    zeros and unset fields left to the worker's defaults). uint64 seeds are taken as sent:
    torch reads a seed and its two's complement alike, and the reply echoes what was sent."""
    kwargs = protocol.arguments(request)
    kwargs.setdefault("prompt", "")
    kwargs.setdefault("seeds", [])
    return kwargs


def build_request(prompt: str, **kwargs: Any) -> pb.GenerateRequest:
    """A GenerateRequest from ``Worker.generate``'s arguments (negative seeds wrap to uint64,
    enums by name), encoded as ``sigmaserve.Client`` encodes its requests."""
    return wire.encode(pb.GenerateRequest, {"prompt": prompt, **kwargs})


def _tensor(array: np.ndarray) -> noise_pb.Tensor:
    array = np.asarray(array)
    if array.dtype not in (np.float32, np.float64, np.int64):
        array = array.astype(np.float64)
    return tensors.to_proto(array)


def response_from(generation: Generation) -> pb.GenerateResponse:
    seeds = [seed % U64 for seed in generation.seeds]
    size = {"width": generation.width, "height": generation.height}
    reply = pb.GenerateResponse(
        # A video pipeline makes videos, an image pipeline images: one of the two is empty.
        images=[
            pb.Image(png=png, seed=seed, **size)
            for png, seed in zip(generation.png_bytes(), seeds, strict=True)
        ]
        if not generation.videos
        else [],
        videos=[
            pb.Video(frames=frames, seed=seed, **size)
            for frames, seed in zip(generation.video_png_bytes(), seeds, strict=True)
        ]
        if generation.videos
        else [],
        num_frames=generation.num_frames or 0,
        seeds=seeds,
        scheduler=generation.scheduler,
        timesteps=_tensor(generation.timesteps),
        init_noise_sigma=generation.init_noise_sigma,
        num_inference_steps=generation.num_inference_steps,
        device=generation.device,
        dtype=generation.dtype,
        pipeline=generation.pipeline,
        warnings=list(generation.warnings),
    )
    if generation.sigmas is not None:
        reply.sigmas.CopyFrom(_tensor(generation.sigmas))
    return reply


class WorkerServicer(pb_grpc.WorkerServiceServicer):
    """Runs ``Worker.generate`` in a thread so the event loop keeps answering health checks."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def Generate(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> pb.GenerateResponse:
        try:
            kwargs = request_kwargs(request)
            generation = await asyncio.to_thread(self.worker.generate, **kwargs)
            return response_from(generation)
        except InvalidArgumentError as exc:
            await context.abort_with_status(status_for(exc))
        except Exception as exc:
            code = getattr(exc, "code", None)
            if isinstance(code, grpc.StatusCode) and code in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ):
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"noise service: {exc}")
            if isinstance(code, grpc.StatusCode) and code in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.PERMISSION_DENIED,
            ):
                # The worker's own configuration, not the caller's request: say which flags.
                log.error("the noise service refused this worker's credentials: %s", exc)
                await context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"the noise service refused this worker's credentials ({exc}); "
                    "check its --noise-token-file and --noise-tls-* options",
                )
            await context.abort_with_status(status_for(exc))
        raise AssertionError("unreachable")


def worker_server_options() -> list[tuple[str, int]]:
    """The worker port's channel arguments: replies of many PNGs, one server per port, and the
    noise server's ping policy (``server.app.ping_policy``)."""
    return [
        ("grpc.max_send_message_length", 256 << 20),
        ("grpc.so_reuseport", 0),
        *ping_policy(ServerConfig().min_ping_interval_ms),
    ]


@dataclass
class RunningWorker:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int

    async def shutdown(self, grace: float = 10.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_worker_server(
    worker: Worker,
    host: str = "127.0.0.1",
    port: int = 50052,
    *,
    token: str = "",
    credentials: grpc.ServerCredentials | None = None,
) -> RunningWorker:
    """Serve WorkerService, health (``""`` and ``sigmaserve.v1.WorkerService``) and reflection.

    ``token``: every call but health must carry ``authorization: Bearer <token>`` (the noise
    service's interceptor); ``credentials``: serve TLS (mutual TLS when they require a client
    certificate) instead of plaintext.
    """
    server = grpc.aio.server(
        options=worker_server_options(),
        interceptors=[BearerTokenInterceptor(token)] if token else [],
    )
    pb_grpc.add_WorkerServiceServicer_to_server(WorkerServicer(worker), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{host}:{port}"
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from None
    if bound == 0:
        raise OSError(f"cannot listen on {address}: address in use or not available")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "worker listening on %s:%d (%s on %s; %s%s)",
        host,
        bound,
        worker.kind.family,
        worker.device,
        "TLS" if credentials is not None else "plaintext",
        ", token auth" if token else "",
    )
    return RunningWorker(server, health_servicer, bound)


async def serve_worker(
    worker: Worker,
    host: str,
    port: int,
    *,
    token: str = "",
    credentials: grpc.ServerCredentials | None = None,
    grace: float = 25.0,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain: health turns NOT_SERVING, new calls are
    refused and in-flight generations get ``grace`` seconds to finish."""
    running = await start_worker_server(worker, host, port, token=token, credentials=credentials)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: NOT_SERVING, %.0f s for in-flight generations", grace)
    await running.shutdown(grace)
    log.info("stopped")


@contextlib.contextmanager
def worker_in_thread(
    worker: Worker,
    host: str = "127.0.0.1",
    *,
    token: str = "",
    credentials: grpc.ServerCredentials | None = None,
) -> Iterator[RunningWorker]:
    """A worker server on an ephemeral port in a background thread (tests)."""
    with running_in_thread(
        lambda: start_worker_server(worker, host, 0, token=token, credentials=credentials),
        "sigmaserve-worker",
    ) as running:
        yield running


class WorkerClient:
    """Blocking client for WorkerService.Generate.

    ``token`` sends ``authorization: Bearer <token>``; ``credentials``, or ``root_certificates``
    (the CA), ``private_key`` and ``certificate_chain`` (a client certificate for mutual TLS) as
    PEM file paths or bytes, switch the channel to TLS, as for ``sigmaserve.Client``.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 600.0,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        root_certificates: str | bytes | None = None,
        private_key: str | bytes | None = None,
        certificate_chain: str | bytes | None = None,
    ) -> None:
        from sigmaserve.client.common import channel_credentials

        options = [("grpc.max_receive_message_length", 256 << 20)]
        credentials = channel_credentials(
            credentials, root_certificates, private_key, certificate_chain
        )
        self._channel = (
            grpc.insecure_channel(target, options=options)
            if credentials is None
            else grpc.secure_channel(target, credentials, options=options)
        )
        self._stub = pb_grpc.WorkerServiceStub(self._channel)
        self._timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def generate(self, prompt: str, **kwargs: Any) -> pb.GenerateResponse:
        from sigmaserve.client.common import translate_error

        try:
            return self._stub.Generate(
                build_request(prompt, **kwargs), timeout=self._timeout, metadata=self._metadata
            )
        except grpc.RpcError as err:
            raise translate_error(err) from None
