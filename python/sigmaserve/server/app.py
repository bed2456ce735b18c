"""Builds and runs the grpc.aio server: NoiseService, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sigmaserve.server.auth import BearerTokenInterceptor, server_credentials
from sigmaserve.server.config import ServerConfig, StartupError, join_host_port
from sigmaserve.server.interceptors import (
    ConcurrencyLimitInterceptor,
    ObservingInterceptor,
    ServerLifecycle,
)
from sigmaserve.server.observability import Metrics, configure_logging
from sigmaserve.server.service import LatentsService
from sigmaserve.server.servicer import SERVICE_NAME, NoiseServicer

log = logging.getLogger("sigmaserve.server")


class PortInUseError(StartupError):
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
    lifecycle: ServerLifecycle | None = None

    async def shutdown(self, grace: float | None = None) -> None:
        """Health turns NOT_SERVING, then in-flight calls get ``grace`` seconds to finish."""
        await self.health.enter_graceful_shutdown()
        if self.oip is not None:
            self.oip.ready = False
        if self.config.drain_seconds > 0:
            await asyncio.sleep(self.config.drain_seconds)
        grace = self.config.grace_seconds if grace is None else grace
        if self.lifecycle is not None:
            self.lifecycle.stopping(grace)
        await self.server.stop(grace)
        if self.lifecycle is not None:
            await self.lifecycle.calls_finished(timeout=2.0)
        self.metrics.close()


def ping_policy(min_ping_interval_ms: int) -> list[tuple[str, int]]:
    """The server side of keepalive, matched to sigmaserve.Client's (client/common.py): idle
    clients may ping, every ``min_ping_interval_ms`` at most (the noise server and the worker).

    grpc-core's name for the interval is "grpc.http2.min_ping_interval_without_data_ms"
    (GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS in
    include/grpc/impl/channel_arg_names.h); "..._min_recv_ping_interval_..." as some docs spell
    it is silently ignored, leaving the 5 minute default, and idle clients pinging every 30 s
    are then sent GOAWAY too_many_pings."""
    return [
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", min_ping_interval_ms),
    ]


def server_options(config: ServerConfig) -> list[tuple[str, int]]:
    # The send limit also covers the OIP facade, which answers up to max_unary_reply_bytes.
    return [
        ("grpc.max_send_message_length", config.max_unary_reply_bytes + (1 << 20)),
        ("grpc.max_receive_message_length", config.max_receive_message_bytes),
        # A second server on the same port must fail, not silently share it.
        ("grpc.so_reuseport", 0),
        *ping_policy(config.min_ping_interval_ms),
        # Clients reconnect (and re-resolve) every few minutes; this also ends every stream,
        # health Watch streams included, within max age + grace.
        ("grpc.max_connection_age_ms", 300_000),
        ("grpc.max_connection_age_grace_ms", 30_000),
    ]


def _check_address_free(host: str, port: int, address: str) -> None:
    """Refuse an address no socket can bind, with the system's reason (grpc would log a
    multi-line error first). Like grpc, one bindable address of the host's is enough."""
    if port == 0:
        return
    try:
        candidates = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise PortInUseError(f"cannot listen on {address}: {exc.strerror}") from None
    reason = "no address"
    for family, kind, proto, _name, sockaddr in candidates:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does
            try:
                probe.bind(sockaddr)
                return
            except OSError as exc:
                reason = exc.strerror or str(exc)
    raise PortInUseError(f"cannot listen on {address}: {reason}")


def _served_methods(service_names: list[str]) -> list[str]:
    """``/package.Service/Method`` of every method of the named services."""
    pool = descriptor_pool.Default()
    return [
        f"/{name}/{method.name}"
        for name in service_names
        for method in pool.FindServiceByName(name).methods
    ]


async def start_server(config: ServerConfig) -> RunningServer:
    """Start serving on ``config.host:config.port`` (port 0 picks a free one).

    Raises StartupError (PortInUseError for the address) when the configuration cannot be
    served: an empty token file, unreadable or mismatched TLS files, a taken port."""
    config.validate()
    token = config.bearer_token()
    credentials = server_credentials(config)
    metrics = Metrics()
    lifecycle = ServerLifecycle()
    service = LatentsService(config)
    servicer = NoiseServicer(config, service)
    handlers = [servicer.generic_handler()]
    names = [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME]
    oip = None
    if config.oip:
        from sigmaserve.server.oip import SERVICE_NAME as OIP_SERVICE
        from sigmaserve.server.oip import OipServicer

        oip = OipServicer(config, service)
        handlers.append(oip.generic_handler())
        names.append(OIP_SERVICE)
    interceptors: list[grpc.aio.ServerInterceptor] = [
        ObservingInterceptor(metrics, lifecycle, _served_methods(names))
    ]
    if token:
        interceptors.append(BearerTokenInterceptor(token))
    interceptors.append(
        ConcurrencyLimitInterceptor(config.max_concurrent_rpcs, config.max_health_watches)
    )
    server = grpc.aio.server(options=server_options(config), interceptors=interceptors)
    server.add_generic_rpc_handlers(tuple(handlers))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        reflection.enable_server_reflection(names, server)
    address = config.listen_address()
    _check_address_free(config.host, config.port, address)
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
        try:
            metrics_port = metrics.serve_http(config.metrics_host, max(config.metrics_port, 0))
        except StartupError:
            await server.stop(None)
            raise
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    metrics_address = join_host_port(config.metrics_host, metrics_port or 0)
    log.info(
        "sigmaserve listening on %s (%s%s%s)",
        join_host_port(config.host, port),
        "TLS" if credentials is not None else "plaintext",
        ", token auth" if token else "",
        f", metrics on {metrics_address}" if metrics_port else "",
    )
    return RunningServer(
        server, health_servicer, port, config, metrics, metrics_port, oip, lifecycle
    )


async def serve(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    config.validate()
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
