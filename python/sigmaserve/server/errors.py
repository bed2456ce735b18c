"""Exceptions to gRPC statuses, with google.rpc rich details."""

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

log = logging.getLogger("sigmaserve.server")


def status_for(exc: BaseException) -> grpc.Status:
    """The status a failed call answers with. Caller mistakes never become UNKNOWN/INTERNAL."""
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
    log.exception("internal error", exc_info=exc)
    return _status(code_pb2.INTERNAL, "internal error (logged on the server)", None)


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
    """A request deserializer that never raises (grpcio would answer INTERNAL for a parse error);
    the handler answers INVALID_ARGUMENT for the :class:`Unparsable` it returns instead."""
    parse = message_class.FromString
    name = message_class.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:
            return Unparsable(name, exc)

    return deserialize
