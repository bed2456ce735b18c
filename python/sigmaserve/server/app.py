"""Builds and runs the grpc.aio server: NoiseService, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sigmaserve.server.auth import BearerTokenInterceptor, server_credentials
from sigmaserve.server.config import ServerConfig
from sigmaserve.server.observability import Metrics, configure_logging
from sigmaserve.server.service import LatentsService
from sigmaserve.server.servicer import SERVICE_NAME, NoiseServicer

log = logging.getLogger("sigmaserve.server")


class PortInUseError(RuntimeError):
    """The requested address could not be bound."""


@dataclass
class RunningServer:
    """A started server and what stopping it needs."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    config: ServerConfig
    metrics: Metrics
    metrics_port: int | None = None
    oip: Any = None

    async def shutdown(self, grace: float | None = None) -> None:
        """Health turns NOT_SERVING, then in-flight calls get ``grace`` seconds to finish."""
        await self.health.enter_graceful_shutdown()
        if self.oip is not None:
            self.oip.ready = False
        if self.config.drain_seconds > 0:
            await asyncio.sleep(self.config.drain_seconds)
        await self.server.stop(self.config.grace_seconds if grace is None else grace)
        self.metrics.close()


def server_options(config: ServerConfig) -> list[tuple[str, int]]:
    # The send limit also covers the OIP facade, which answers up to max_unary_reply_bytes.
    return [
        ("grpc.max_send_message_length", config.max_unary_reply_bytes + (1 << 20)),
        ("grpc.max_receive_message_length", config.max_receive_message_bytes),
        # A second server on the same port must fail, not silently share it.
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 20_000),
        ("grpc.max_connection_age_ms", 300_000),
        ("grpc.max_connection_age_grace_ms", 30_000),
    ]


async def start_server(config: ServerConfig) -> RunningServer:
    """Start serving on ``config.host:config.port`` (port 0 picks a free one)."""
    token = config.bearer_token()
    interceptors = [BearerTokenInterceptor(token)] if token else []
    server = grpc.aio.server(
        options=server_options(config),
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        interceptors=interceptors,
    )
    metrics = Metrics()
    service = LatentsService(config)
    servicer = NoiseServicer(config, service)
    server.add_generic_rpc_handlers((servicer.generic_handler(),))
    names = [SERVICE_NAME, health.SERVICE_NAME]
    oip = None
    if config.oip:
        from sigmaserve.server.oip import SERVICE_NAME as OIP_SERVICE
        from sigmaserve.server.oip import OipServicer

        oip = OipServicer(config, service)
        server.add_generic_rpc_handlers((oip.generic_handler(),))
        names.append(OIP_SERVICE)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)
    address = f"{config.host}:{config.port}"
    credentials = server_credentials(config)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise PortInUseError(f"cannot listen on {address}: {exc}") from None
    if port == 0:
        raise PortInUseError(f"cannot listen on {address}: address in use or not available")
    metrics_port = None
    if config.metrics_port:
        metrics_port = metrics.serve_http(config.metrics_host, max(config.metrics_port, 0))
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "sigmaserve listening on %s:%d (%s%s%s)",
        config.host,
        port,
        "TLS" if credentials is not None else "plaintext",
        ", token auth" if token else "",
        f", metrics on {config.metrics_host}:{metrics_port}" if metrics_port else "",
    )
    return RunningServer(server, health_servicer, port, config, metrics, metrics_port, oip)


async def serve(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    configure_logging(config.log_level, config.log_format)
    running = await start_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info(
        "shutting down: NOT_SERVING, then %.1f s grace for in-flight calls", config.grace_seconds
    )
    await running.shutdown()
    log.info("stopped")


class _Stoppable(Protocol):
    async def shutdown(self, grace: float) -> None: ...


_S = TypeVar("_S", bound=_Stoppable)


@contextlib.contextmanager
def running_in_thread(start: Callable[[], Coroutine[Any, Any, _S]], name: str) -> Iterator[_S]:
    """Start a grpc.aio server with ``start()`` on its own event loop in a background thread,
    and shut it down (1 s grace) on leaving the block. For tests and benchmarks."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    running = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    try:
        yield running
    finally:
        asyncio.run_coroutine_threadsafe(running.shutdown(grace=1.0), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@contextlib.contextmanager
def server_in_thread(config: ServerConfig | None = None) -> Iterator[RunningServer]:
    """Run a server on its own event loop in a background thread (tests, benchmarks)."""
    config = config or ServerConfig(port=0)
    with running_in_thread(lambda: start_server(config), "sigmaserve-server") as running:
        yield running
