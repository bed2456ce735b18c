"""Prometheus metrics (own registry, separate HTTP port) and structured logs with a request id."""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from sigmaserve.server.config import StartupError, join_host_port

log = logging.getLogger("sigmaserve.server")

REQUEST_ID_HEADER = "x-request-id"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class Metrics:
    """Server metrics in their own registry (several servers may share one process in tests).

    Names follow go-grpc-prometheus: ``grpc_server_started_total``, ``grpc_server_handled_total``
    (by ``grpc_code``), ``grpc_server_handling_seconds``, plus ``sigmaserve_reply_bytes_total``
    and ``sigmaserve_inflight_requests``. Without prometheus-client installed, it records nothing.
    """

    def __init__(self) -> None:
        self._http: MetricsHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        try:
            import prometheus_client as prom
        except ImportError:  # metrics are an optional extra
            self.registry = None
            return
        self.registry = prom.CollectorRegistry()
        labels = ("grpc_service", "grpc_method")
        self.started = prom.Counter(
            "grpc_server_started_total", "RPCs started", labels, registry=self.registry
        )
        self.handled = prom.Counter(
            "grpc_server_handled_total",
            "RPCs finished, by status code",
            (*labels, "grpc_code"),
            registry=self.registry,
        )
        self.latency = prom.Histogram(
            "grpc_server_handling_seconds",
            "RPC latency until the reply is handed to gRPC",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reply_bytes = prom.Counter(
            "sigmaserve_reply_bytes_total",
            "Serialized reply bytes sent",
            labels,
            registry=self.registry,
        )
        self.inflight = prom.Gauge(
            "sigmaserve_inflight_requests", "RPCs being served", registry=self.registry
        )
        # label children, looked up once per (service, method) and code
        self._children: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
        self._handled: dict[tuple[str, str, str], Any] = {}

    def serve_http(self, host: str, port: int) -> int:
        """Expose ``/metrics`` on ``host:port`` (0 picks a port); returns the bound port."""
        if self.registry is None:
            raise StartupError(
                "--metrics-port: metrics need the prometheus-client package "
                "(pip install 'sigmaserve[metrics]')"
            )
        import prometheus_client as prom

        server = MetricsHTTPServer.bind(host, port, prom.make_wsgi_app(self.registry))
        self._http = server
        self._http_thread = threading.Thread(
            target=server.serve_forever, name="sigmaserve-metrics-accept", daemon=True
        )
        self._http_thread.start()
        return int(server.server_address[1])

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(timeout=10)
            self._http_thread = None

    def begin(self, service: str, method: str) -> float:
        if self.registry is not None:
            self._labelled(service, method)[0].inc()
            self.inflight.inc()
        return time.perf_counter()

    def end(self, service: str, method: str, start: float, code: str, sent_bytes: int) -> None:
        if self.registry is None:
            return
        self.inflight.dec()
        key = (service, method, code)
        handled = self._handled.get(key)
        if handled is None:
            handled = self._handled[key] = self.handled.labels(service, method, code)
        handled.inc()
        _started, latency, reply_bytes = self._labelled(service, method)
        latency.observe(time.perf_counter() - start)
        if sent_bytes:
            reply_bytes.inc(sent_bytes)

    def _labelled(self, service: str, method: str) -> tuple[Any, Any, Any]:
        """The (started, latency, reply_bytes) children of a method (``labels`` costs more
        than the updates themselves)."""
        key = (service, method)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.started.labels(service, method),
                self.latency.labels(service, method),
                self.reply_bytes.labels(service, method),
            )
        return children


class _QuietHandler(WSGIRequestHandler):
    # A scraper that opens a connection and sends nothing is dropped after this many seconds.
    timeout = 10.0

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsHTTPServer(WSGIServer):
    """The ``/metrics`` endpoint, served by a fixed pool of threads.

    prometheus-client's own server starts a thread per connection without a cap, so slow or
    idle connections could make hundreds of threads. Here ``WORKERS`` threads serve at most
    ``WORKERS + WAITING`` connections; further connections are closed at once, and a
    connection that sends nothing is dropped after the handler's timeout."""

    WORKERS = 4
    WAITING = 16
    request_queue_size = 64  # the listen backlog

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily) -> None:
        self.address_family = family
        self._pool = ThreadPoolExecutor(self.WORKERS, thread_name_prefix="sigmaserve-metrics")
        self._room = threading.BoundedSemaphore(self.WORKERS + self.WAITING)
        super().__init__(address, _QuietHandler)  # binds (closes itself on failure)

    @classmethod
    def bind(cls, host: str, port: int, app: Callable[..., Any]) -> MetricsHTTPServer:
        try:
            family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0][0]
            server = cls((host, port), family)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            address = join_host_port(host, port)
            raise StartupError(f"--metrics-port: cannot listen on {address}: {reason}") from None
        server.set_app(app)
        return server

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._room.acquire(blocking=False):
            self.shutdown_request(request)  # over capacity: closed at once
            return
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            log.debug("metrics request from %s failed", client_address, exc_info=True)
        finally:
            self.shutdown_request(request)
            self._room.release()

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def request_id_from(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The caller's ``x-request-id`` (trimmed to 128 characters) or a fresh one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str) and value:
            return value[:128]
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"


# Fresh request ids: 32 hex digits like a uuid4's, a random per-process half and a counter
# (unique in the process, far cheaper than uuid4 on every call).
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(int.from_bytes(os.urandom(4), "little"))


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id and any ``extra``."""

    _STANDARD: frozenset[str] = frozenset(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, fmt: str) -> None:
    """Root logging for ``sigmaserve serve``: text or JSON lines, each with the request id."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
