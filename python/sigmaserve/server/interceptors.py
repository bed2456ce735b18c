"""What every call goes through, as grpc.aio server interceptors (applied in this order):

1. :class:`ObservingInterceptor`, for every service: the request id, metrics, a log line for
   each call that does not end OK, INVALID_ARGUMENT for a request that does not parse, and the
   one error mapping (``errors.status_for``) for anything a handler raises, a Rust panic
   included, so no call ends UNKNOWN or hangs.
2. ``auth.BearerTokenInterceptor`` (when a token is configured): calls without the token are
   refused before they reach the limits below, so they never hold capacity.
3. :class:`ConcurrencyLimitInterceptor`: a cap on the calls doing work (NoiseService, the OIP
   facade, reflection) and a separate one on health Watch streams; Health/Check is never
   limited, so probes are answered while the server is saturated.

A handler's behaviour is wrapped by :func:`wrap_handler` in an async context manager per call;
the wrapper has the kind grpc expects (a coroutine function or an async generator function, as
grpc.aio dispatches on ``inspect``), and wrapped handlers are cached per method.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Protocol

import grpc

from sigmaserve.server.errors import Unparsable, busy_status, status_for, tolerant
from sigmaserve.server.observability import Metrics, request_id_from, request_id_var

log = logging.getLogger("sigmaserve.server")

HEALTH_SERVICE = "grpc.health.v1.Health"
HEALTH_WATCH = f"/{HEALTH_SERVICE}/Watch"
_HEALTH_PREFIX = f"/{HEALTH_SERVICE}/"
# The Open Inference Protocol's own probes (what tritonclient's is_server_live() and KServe
# call): instant answers, never limited, like Health/Check. They still need the token.
_OIP_PROBES = frozenset(
    f"/inference.GRPCInferenceService/{name}"
    for name in ("ServerLive", "ServerReady", "ModelReady")
)
# Labels of calls to methods the server does not serve (never one label per random name).
_UNKNOWN_ROUTE = ("unknown", "unknown")
# A call the caller dropped this close to its deadline counts as DEADLINE_EXCEEDED: the server
# sees the deadline a little later than the caller does (it is sent as a relative timeout).
_DEADLINE_SLACK_S = 0.5
_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Any]]


class CallGuard(Protocol):
    """What :func:`wrap_handler` runs a call inside."""

    async def __aenter__(self) -> CallGuard: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

    def replied(self, message: Any) -> None: ...


def wrap_handler(
    handler: Any,
    guard: Callable[[Any], CallGuard],
    *,
    check_requests: bool = False,
    write_responses: bool = False,
) -> Any:
    """``handler`` with its behaviour run inside ``guard(context)``.

    ``check_requests``: an :class:`Unparsable` request raises its InvalidArgumentError inside
    the guard. ``write_responses``: a streaming behaviour's messages are written here with
    ``context.write`` (inside the guard) rather than by grpc, so a write to a call its caller
    or the server shutdown has ended is seen by the guard, and ends quietly instead of with
    grpc's "ExecuteBatchError raised in core" error line. Synchronous behaviours (run by grpc
    in its thread pool) are returned unchanged."""
    kind = next(k for k in _KINDS if getattr(handler, k) is not None)
    inner = getattr(handler, kind)
    streaming_requests = bool(handler.request_streaming)

    def checked(request: Any) -> Any:
        if not check_requests:
            return request
        if streaming_requests:
            return _checked_stream(request)
        if isinstance(request, Unparsable):
            raise request.error
        return request

    behaviour: Callable[..., Any]
    if inspect.isasyncgenfunction(inner) and write_responses:

        async def writer(request: Any, context: Any) -> None:
            try:
                async with (
                    guard(context) as call,
                    contextlib.aclosing(inner(checked(request), context)) as messages,
                ):
                    async for message in messages:
                        call.replied(message)
                        await context.write(message)
            except Exception as exc:
                if _ended_from_outside(exc):
                    raise asyncio.CancelledError from exc  # grpc logs this at debug level
                raise

        behaviour = writer
    elif inspect.isasyncgenfunction(inner):

        async def generator(request: Any, context: Any) -> AsyncIterator[Any]:
            async with guard(context) as call:
                async for message in inner(checked(request), context):
                    call.replied(message)
                    yield message

        behaviour = generator
    elif inspect.iscoroutinefunction(inner):

        async def coroutine(request: Any, context: Any) -> Any:
            async with guard(context) as call:
                reply = await inner(checked(request), context)
                call.replied(reply)
                return reply

        behaviour = coroutine
    else:
        return handler
    return handler._replace(**{kind: behaviour})


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, Unparsable):
            raise request.error
        yield request


class _HandlerCache:
    """Wrapped handlers by key; the original is kept so its id stays unique."""

    def __init__(self) -> None:
        self._entries: dict[Any, tuple[Any, Any]] = {}

    def get(self, key: Any, handler: Any, build: Callable[[], Any]) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] is not handler:
            entry = self._entries[key] = (handler, build())
        return entry[1]


class ServerLifecycle:
    """The calls in progress, and whether the server's shutdown is cutting them.

    grpc cancels a call its caller dropped and a call the shutdown cut (the grace period over)
    the same way; the time of the cut tells them apart."""

    def __init__(self) -> None:
        self._cut_at: float | None = None
        self._active = 0
        self._idle: asyncio.Event | None = None

    def stopping(self, grace: float | None) -> None:
        """The server stops now and cancels what still runs after ``grace`` seconds."""
        self._cut_at = time.monotonic() + (grace or 0.0)

    def cutting(self) -> bool:
        return self._cut_at is not None and time.monotonic() >= self._cut_at

    def call_started(self) -> None:
        self._active += 1

    def call_finished(self) -> None:
        self._active -= 1
        if self._active == 0 and self._idle is not None:
            self._idle.set()

    async def calls_finished(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until every call has been counted and logged: the
        cancelled ones are, a moment after grpc has cut them."""
        if self._active == 0:
            return
        self._idle = asyncio.Event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)


class ObservingInterceptor(grpc.aio.ServerInterceptor):
    """Request id, metrics, logs and the error mapping of every call (see the module doc).

    ``methods`` are the full names (``/package.Service/Method``) the server serves; calls to
    anything else are labelled ``unknown`` in the metrics."""

    def __init__(self, metrics: Metrics, lifecycle: ServerLifecycle, methods: Iterable[str]):
        self.metrics = metrics
        self.lifecycle = lifecycle
        self._routes = {m: _route(m) for m in methods}
        self._cache = _HandlerCache()

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # grpc answers UNIMPLEMENTED
        method = handler_call_details.method or ""
        route = self._routes.get(method)
        key = (method if route else "", id(handler))
        return self._cache.get(key, handler, lambda: self._wrap(handler, route or _UNKNOWN_ROUTE))

    def _wrap(self, handler: Any, route: tuple[str, str]) -> Any:
        parse = handler.request_deserializer
        if parse is not None:
            name = _message_name(parse) or f"{route[0]}.{route[1]} request"
            handler = handler._replace(request_deserializer=tolerant(parse, name))
        return wrap_handler(
            handler,
            lambda context: _ObservedCall(self, route, context),
            check_requests=True,
            write_responses=True,
        )

    def ended_from_outside(self, context: Any) -> tuple[str, str]:
        """The status the client saw for a call grpc cancelled, and how to say it in a log."""
        if self.lifecycle.cutting():
            return "UNAVAILABLE", "cut by the server shutdown (grace period over)"
        remaining = context.time_remaining()
        if remaining is not None and remaining <= _DEADLINE_SLACK_S:
            return "DEADLINE_EXCEEDED", "ended by its deadline"
        return "CANCELLED", "cancelled by the caller"


class _ObservedCall:
    """One call, from the first await of its handler to its status.

    It is finished (counted, logged) where its outcome becomes known: when the handler returns
    or fails, or, for a call grpc cancelled while it waited on a write, when grpc reports the
    call done."""

    __slots__ = (
        "_context",
        "_finished",
        "_method",
        "_observer",
        "_request_id",
        "_sent",
        "_service",
        "_start",
    )

    def __init__(self, observer: ObservingInterceptor, route: tuple[str, str], context: Any):
        self._observer = observer
        self._service, self._method = route
        self._context = context
        self._sent = 0
        self._start = 0.0
        self._request_id = "-"
        self._finished = False

    async def __aenter__(self) -> _ObservedCall:
        self._request_id = request_id_from(self._context.invocation_metadata())
        request_id_var.set(self._request_id)
        self._start = self._observer.metrics.begin(self._service, self._method)
        self._observer.lifecycle.call_started()
        self._context.add_done_callback(self._on_done)
        return self

    def replied(self, message: Any) -> None:
        # Pre-serialized replies (tensors, schedules) are bytes; the others protobuf messages.
        if isinstance(message, bytes):
            self._sent += len(message)
        elif hasattr(message, "ByteSize"):
            self._sent += message.ByteSize()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        context = self._context
        if exc is None:
            self._finish(_code_of(context) or "OK")
        elif isinstance(exc, grpc.aio.AbortError):  # the handler sent its status
            self._finish(_code_of(context) or "UNKNOWN")
        elif _ended_from_outside(exc):
            self._finish(*self._observer.ended_from_outside(context))
        else:
            # A caller mistake, a bug or a panic: answer it now (the status is what the
            # client sees; grpc would answer UNKNOWN, or nothing at all for a BaseException).
            request_id_var.set(self._request_id)
            status = status_for(exc)
            self._finish(status.code.name)
            await context.abort_with_status(status)  # raises AbortError in place of exc
        return False

    def _on_done(self, _context: Any) -> None:
        self._finish(*self._observer.ended_from_outside(self._context))

    def _finish(self, code: str, how: str | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        self._observer.lifecycle.call_finished()
        self._observer.metrics.end(self._service, self._method, self._start, code, self._sent)
        if code == "OK":
            return
        extra = {"rpc": self._method, "code": code, "request_id": self._request_id}
        if how is not None:
            log.info("%s %s after %d bytes", self._method, how, self._sent, extra=extra)
        elif code == "UNAUTHENTICATED":
            peer = self._context.peer()
            log.info("%s refused: UNAUTHENTICATED (peer %s)", self._method, peer, extra=extra)
        else:
            log.info("%s answered %s", self._method, code, extra=extra)


def _ended_from_outside(exc: BaseException) -> bool:
    """Whether ``exc`` means grpc ended the call (caller gone, deadline, server stopping) rather
    than the handler failing: a cancellation, or grpc's own errors about the finished call."""
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt, SystemExit)):
        return True
    if isinstance(exc, grpc.aio.AbortError):
        return False
    return type(exc).__module__ == "grpc._cython.cygrpc"


def _code_of(context: Any) -> str | None:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else None


def _route(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _message_name(parse: Any) -> str | None:
    """The full name of the message a generated ``FromString`` parses, when it tells."""
    descriptor = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", None)


class _Slots:
    """A count of calls held against a limit (one event loop: no lock needed)."""

    def __init__(self, what: str, limit: int) -> None:
        self.what = what
        self.limit = limit
        self.used = 0

    def hold(self, context: Any) -> _Slot:
        return _Slot(self, context)


class _Slot:
    __slots__ = ("_context", "_slots")

    def __init__(self, slots: _Slots, context: Any) -> None:
        self._slots = slots
        self._context = context

    async def __aenter__(self) -> _Slot:
        slots = self._slots
        if slots.used >= slots.limit:
            await self._context.abort_with_status(busy_status(slots.what, slots.limit))
        slots.used += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._slots.used -= 1
        return False

    def replied(self, message: Any) -> None:
        pass


class ConcurrencyLimitInterceptor(grpc.aio.ServerInterceptor):
    """At most ``max_calls`` calls doing work at once and ``max_watches`` health Watch streams;
    a call over its limit is refused at once with RESOURCE_EXHAUSTED. Other health calls
    (Check) and the OIP probes are not limited: a liveness probe is answered however busy the
    server is.

    This replaces grpc's ``maximum_concurrent_rpcs``, which counts every call, health and
    unauthenticated ones included, so never-ending Watch streams could starve everything."""

    def __init__(self, max_calls: int, max_watches: int) -> None:
        self.calls = _Slots("calls", max_calls)
        self.watches = _Slots("health watches", max_watches)
        self._cache = _HandlerCache()

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method or ""
        if method in _OIP_PROBES:
            return handler
        if method.startswith(_HEALTH_PREFIX):
            if method != HEALTH_WATCH:
                return handler
            slots = self.watches
        else:
            slots = self.calls
        return self._cache.get(id(handler), handler, lambda: wrap_handler(handler, slots.hold))
