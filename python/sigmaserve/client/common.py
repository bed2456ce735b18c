"""Channel options, status mapping and reply decoding shared by the sync and asyncio clients."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sigmaserve import tensors, wire
from sigmaserve.errors import InvalidArgumentError, SigmaserveError, TooLargeError
from sigmaserve.latents import Latents
from sigmaserve.v1 import noise_service_pb2 as pb

MIB = 1 << 20
DEFAULT_TIMEOUT = 30.0
# StreamInitLatents moves up to gigabytes; its deadline covers the whole stream.
DEFAULT_STREAM_TIMEOUT = 600.0
DEFAULT_MAX_RECEIVE = 256 * MIB
# An idle channel pings the server this often, so NATs and load balancers keep the connection
# and a dead peer is noticed. sigmaserve's server accepts pings every 20 s at most often
# (ServerConfig.min_ping_interval_ms); a server that accepts fewer answers GOAWAY too_many_pings.
KEEPALIVE_TIME_MS = 30_000

# Retries UNAVAILABLE (a replica restarting, a connection reset) with backoff; every RPC of the
# service is idempotent, so a retried call returns the same bytes.
RETRY_SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": "sigmaserve.v1.NoiseService"}],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.05s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}


class RemoteError(SigmaserveError):
    """A call failed for a reason other than the caller's arguments."""

    def __init__(self, message: str, code: grpc.StatusCode) -> None:
        super().__init__(message)
        self.code = code


def channel_options(
    max_receive_message_length: int, extra: Sequence[tuple[str, Any]] = ()
) -> list[tuple[str, Any]]:
    """The client's channel arguments; ``extra`` ones replace defaults of the same name (grpc
    itself would keep the first of two)."""
    defaults = [
        ("grpc.max_receive_message_length", max_receive_message_length),
        ("grpc.service_config", json.dumps(RETRY_SERVICE_CONFIG)),
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # Ping every KEEPALIVE_TIME_MS however long the channel is idle (grpc's default, 2,
        # throttles the pings of an idle channel to one a minute).
        ("grpc.http2.max_pings_without_data", 0),
    ]
    return list({**dict(defaults), **dict(extra)}.items())


def resolve_target(target: str | Sequence[str]) -> str:
    """A gRPC target; a list of ``host:port`` IPv4 endpoints becomes ``ipv4:a,b,c``.

    Strings pass through unchanged: ``"host:port"``, ``"ipv4:10.0.0.1:50051,10.0.0.2:50051"``,
    ``"dns:///noise-headless.ns.svc:50051"``. The channel balances calls round_robin over every
    address the target resolves to.
    """
    if isinstance(target, str):
        return target
    endpoints = [str(t) for t in target]
    if not endpoints:
        raise ValueError("target: give at least one endpoint")
    if len(endpoints) == 1:
        return endpoints[0]
    return "ipv4:" + ",".join(e.removeprefix("ipv4:") for e in endpoints)


def channel_credentials(
    credentials: grpc.ChannelCredentials | None,
    root_certificates: str | bytes | None,
    private_key: str | bytes | None,
    certificate_chain: str | bytes | None,
) -> grpc.ChannelCredentials | None:
    """Explicit credentials, or TLS credentials from PEM files (paths) or PEM bytes."""
    if credentials is not None:
        return credentials
    if root_certificates is None and private_key is None and certificate_chain is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_pem(root_certificates),
        private_key=_pem(private_key),
        certificate_chain=_pem(certificate_chain),
    )


def _pem(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    with open(value, "rb") as handle:
        return handle.read()


def needs_streaming(err: grpc.RpcError) -> bool:
    """The server refused a unary reply for its size and points to StreamInitLatents."""
    return err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "StreamInitLatents" in (
        err.details() or ""
    )


def translate_error(err: grpc.RpcError) -> Exception:
    """The local exception for a failed call: the same class a local call would raise."""
    code = err.code()
    message = err.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgumentError(message, _violated_field(err))
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _reason(err) == "REPLY_TOO_LARGE":
        return TooLargeError(message, _violated_field(err) or "shape")
    return RemoteError(f"{code.name}: {message}", code)


def _reason(err: grpc.RpcError) -> str | None:
    status = rpc_status.from_call(err)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return None


def _violated_field(err: grpc.RpcError) -> str | None:
    status = rpc_status.from_call(err)
    if status is None:
        return message_field(err.details() or "")
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                return bad.field_violations[0].field
    return message_field(err.details() or "")


def message_field(message: str) -> str | None:
    head, sep, _ = message.partition(":")
    return head if sep and " " not in head else None


def latents_from_reply(reply: pb.SampleInitLatentsResponse, seeds: Sequence[int]) -> Latents:
    """Latents of a unary reply: the payload is read once and copied once (writable array)."""
    dtype = tensors.enum_to_dtype(reply.latents.dtype)
    array = tensors.from_proto(reply.latents, field="latents").copy()
    states = tuple(reply.generator_states) or None
    return Latents(array, reply.init_noise_sigma, tuple(seeds), dtype, states)


def latents_from_chunks(
    header: pb.LatentsHeader, chunks: Sequence[bytes], seeds: Sequence[int]
) -> Latents:
    dtype = tensors.enum_to_dtype(header.dtype)
    buffer = np.empty(header.total_bytes, dtype=np.uint8)
    offset = 0
    for chunk in chunks:
        buffer[offset : offset + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        offset += len(chunk)
    if offset != header.total_bytes:
        raise RemoteError(
            f"stream ended after {offset} of {header.total_bytes} bytes", grpc.StatusCode.DATA_LOSS
        )
    array = buffer.view(tensors.storage_dtype(dtype)).reshape(tuple(header.shape))
    states = tuple(header.generator_states) or None
    return Latents(array, header.init_noise_sigma, tuple(seeds), dtype, states)


def expected_reply_bytes(request: pb.SampleInitLatentsRequest) -> int | None:
    """Size of the latents a request asks for, when the client can tell without the server."""
    kwargs = wire.latents_kwargs(request)
    try:
        from sigmaserve.latents import resolve_shape

        dims = resolve_shape(
            kwargs["shape"],
            kwargs["width"],
            kwargs["height"],
            kwargs["batch_size"],
            kwargs["preset"],
        )
    except InvalidArgumentError:
        return None  # let the server report it
    count = int(np.prod(dims, dtype=np.float64))
    return count * tensors.storage_dtype(kwargs["dtype"]).itemsize
