"""What the sync and asyncio clients share: the channel set-up, request building, reply decoding
and status mapping. The two clients only differ in how they wait for a call."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import grpc
import numpy as np
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sigmaserve import tensors, wire
from sigmaserve.arguments import scheduler_arguments
from sigmaserve.errors import InvalidArgumentError, SigmaserveError, TooLargeError, invalid
from sigmaserve.results import Latents, Schedule
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


# grpc's policy above retries a call only until it is committed (the server's first response
# headers); a replica that dies after that, mid-call, ends the call UNAVAILABLE ("Stream
# removed"). Every NoiseService RPC is idempotent and deterministic, so the client reissues such
# a call after these pauses (seconds): a replica killed under load costs a retry, not an error.
REISSUE_DELAYS_S = (0.05, 0.2, 0.5)


def reissue_delays() -> Iterator[float | None]:
    """The pause before each reissue of a call cut by UNAVAILABLE, then ``None``: give up."""
    yield from REISSUE_DELAYS_S
    yield None


def is_unavailable(err: grpc.RpcError) -> bool:
    return err.code() == grpc.StatusCode.UNAVAILABLE


@dataclass(frozen=True)
class ServerInfo:
    """A server's identity and limits (``GetServerInfo``), so a caller can size its requests
    and choose between the unary and streaming calls."""

    version: str
    # Largest tensor one request may ask for, in elements.
    max_elements: int
    # Largest SampleInitLatents reply, in bytes; larger tensors come through the stream.
    max_unary_reply_bytes: int
    # Size of StreamInitLatents' data messages.
    stream_chunk_bytes: int
    max_concurrent_rpcs: int

    @classmethod
    def from_proto(cls, reply: pb.GetServerInfoResponse) -> ServerInfo:
        return cls(**{f.name: getattr(reply, f.name) for f in fields(cls)})


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


class _Unset:
    """An argument the caller did not give: its field stays unset and the server's default
    (the same as the local call's) applies."""

    def __repr__(self) -> str:
        return "<default>"


UNSET: Any = _Unset()


class ClientCore:
    """Everything of a client but the calls themselves."""

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        stream_timeout: float | None = DEFAULT_STREAM_TIMEOUT,
        credentials: grpc.ChannelCredentials | None = None,
        root_certificates: str | bytes | None = None,
        private_key: str | bytes | None = None,
        certificate_chain: str | bytes | None = None,
        token: str | None = None,
        max_receive_message_length: int = DEFAULT_MAX_RECEIVE,
        stream_threshold_bytes: int = 32 * MIB,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.target = resolve_target(target)
        self.options = channel_options(max_receive_message_length, options)
        self.credentials = channel_credentials(
            credentials, root_certificates, private_key, certificate_chain
        )
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self.stream_threshold = stream_threshold_bytes

    def schedule_request(
        self,
        arguments: Mapping[str, Any],
        config: Mapping[str, Any] | None,
        overrides: Mapping[str, Any],
    ) -> pb.GetScheduleRequest:
        """The request for ``get_schedule``'s named ``arguments`` (those left :data:`UNSET`
        stay unset: the server's defaults are the local call's), ``config`` and overrides. A
        diffusers scheduler object travels as its class name and config."""
        given = {name: value for name, value in arguments.items() if value is not UNSET}
        scheduler, config = scheduler_arguments(given.pop("scheduler", None), config)
        if scheduler is not None:
            given["scheduler"] = scheduler
        if config is not None:
            given["config"] = config
        return wire.schedule_request({**given, **overrides})

    @staticmethod
    def catalog_result(reply: pb.GetCatalogResponse) -> dict[str, Any]:
        return wire.catalog_from_proto(reply)

    def latents_request(self, arguments: Mapping[str, Any]) -> pb.SampleInitLatentsRequest:
        if "max_elements" in arguments:
            raise invalid("max_elements", "a server sets its own limit (see Client.server_info())")
        return wire.latents_request(arguments)

    def wants_stream(self, request: pb.SampleInitLatentsRequest) -> bool:
        """Whether the reply is known to exceed the unary threshold before asking (explicit
        shapes; for image sizes the server says so and the call falls back to the stream)."""
        if not request.shape:
            return False
        count = int(np.prod(request.shape, dtype=np.float64))
        dtype = tensors.enum_to_dtype(request.dtype, default="float32")
        itemsize = tensors.storage_dtype(dtype).itemsize if dtype in tensors.NOISE_DTYPES else 4
        return count * itemsize > self.stream_threshold

    @staticmethod
    def schedule_result(reply: pb.GetScheduleResponse) -> Schedule:
        return wire.schedule_from_proto(reply)

    @staticmethod
    def latents_result(reply: pb.SampleInitLatentsResponse, seeds: Any) -> Latents:
        return wire.latents_from_reply(reply, wire.given_seeds(seeds))

    @staticmethod
    def stream_result(chunks: Sequence[pb.LatentsChunk], seeds: Any) -> Latents:
        """Latents of a whole stream: a header, then the payload chunks."""
        if not chunks or not chunks[0].HasField("header"):
            raise RemoteError("stream ended without a header", grpc.StatusCode.DATA_LOSS)
        try:
            return wire.latents_from_chunks(
                chunks[0].header, [c.data for c in chunks[1:]], wire.given_seeds(seeds)
            )
        except ValueError as exc:
            raise RemoteError(str(exc), grpc.StatusCode.DATA_LOSS) from None
