"""Exceptions to gRPC statuses, with google.rpc rich details: the one error mapping every entry
point shares (the observing interceptor applies it to whatever escapes a handler)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from sigmaserve.errors import InvalidArgumentError, OverloadedError, TooLargeError
from sigmaserve.server.observability import request_id_var

log = logging.getLogger("sigmaserve.server")


def status_for(exc: BaseException) -> grpc.Status:
    """The status a failed call answers with: InvalidArgumentError is INVALID_ARGUMENT with a
    BadRequest, TooLargeError RESOURCE_EXHAUSTED with an ErrorInfo; anything else (a bug, or a
    Rust panic, which is a BaseException) is INTERNAL, logged with the call's request id."""
    if isinstance(exc, TooLargeError):
        info = error_details_pb2.ErrorInfo(reason="REPLY_TOO_LARGE", domain="sigmaserve")
        return _status(code_pb2.RESOURCE_EXHAUSTED, str(exc), info)
    if isinstance(exc, OverloadedError):
        info = error_details_pb2.ErrorInfo(reason="SERVER_OVERLOADED", domain="sigmaserve")
        return _status(code_pb2.RESOURCE_EXHAUSTED, str(exc), info)
    if isinstance(exc, InvalidArgumentError):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=exc.field or "", description=str(exc)
        )
        detail = error_details_pb2.BadRequest(field_violations=[violation])
        return _status(code_pb2.INVALID_ARGUMENT, str(exc), detail)
    request_id = request_id_var.get()
    log.error(
        "internal error: %s: %s",
        type(exc).__name__,
        exc,
        exc_info=exc,
        extra={"request_id": request_id},
    )
    return _status(
        code_pb2.INTERNAL, f"internal error (request id {request_id}, logged on the server)", None
    )


def busy_status(what: str, limit: int) -> grpc.Status:
    """RESOURCE_EXHAUSTED for a call over a concurrency limit (the caller may retry later)."""
    info = error_details_pb2.ErrorInfo(
        reason="TOO_MANY_CALLS", domain="sigmaserve", metadata={"limit": str(limit)}
    )
    message = f"server busy: {limit} {what} in progress, the most it serves at once; retry later"
    return _status(code_pb2.RESOURCE_EXHAUSTED, message, info)


def _status(code: int, message: str, detail: Message | None) -> grpc.Status:
    status = status_pb2.Status(code=code, message=message)
    if detail is not None:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return rpc_status.to_status(status)


class Unparsable:
    """What a request deserializes to when its bytes are not the declared message."""

    def __init__(self, message_name: str, error: Exception) -> None:
        self.error = InvalidArgumentError(
            f"request: not a valid {message_name} message ({error})", "request"
        )


def lenient(message_class: Any) -> Callable[[bytes], Any]:
    """A request deserializer that never raises (grpcio would answer UNKNOWN for a parse error);
    the observing interceptor answers INVALID_ARGUMENT for the :class:`Unparsable` it returns."""
    return tolerant(message_class.FromString, message_class.DESCRIPTOR.full_name)


def tolerant(parse: Callable[[bytes], Any], message_name: str) -> Callable[[bytes], Any]:
    """``parse`` returning :class:`Unparsable` instead of raising (unchanged if it already
    does)."""
    if getattr(parse, "_returns_unparsable", False):
        return parse

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:
            return Unparsable(message_name, exc)

    deserialize._returns_unparsable = True  # type: ignore[attr-defined]
    return deserialize
