"""Bearer-token auth (an aio interceptor) and TLS / mutual-TLS server credentials."""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from sigmaserve.server.config import ServerConfig, StartupError

# Kubernetes and compose probes call Health without credentials.
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
_DENIED = "missing or invalid bearer token"


async def _deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DENIED)


async def _deny_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DENIED)
    yield  # pragma: no cover - makes this an async generator


# One refusing handler per call shape (the shape must match the method's).
_DENY = {
    (False, False): grpc.unary_unary_rpc_method_handler(_deny),
    (False, True): grpc.unary_stream_rpc_method_handler(_deny_stream),
    (True, False): grpc.stream_unary_rpc_method_handler(_deny),
    (True, True): grpc.stream_stream_rpc_method_handler(_deny_stream),
}


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without ``authorization: Bearer <token>`` with UNAUTHENTICATED.

    Interceptors after this one (the concurrency limits) only see authorized calls, so an
    unauthenticated caller never holds capacity; the observing interceptor before it counts
    and logs the refusals."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method or ""
        if method.startswith(OPEN_PREFIXES) or self._authorized(handler_call_details):
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        if handler is None:
            return _DENY[(False, False)]
        return _DENY[(bool(handler.request_streaming), bool(handler.response_streaming))]

    def _authorized(self, details: grpc.HandlerCallDetails) -> bool:
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else bytes(value)
                return hmac.compare_digest(given, self._expected)
        return False


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from the configured PEM files, or None for plaintext.

    The files are checked first (readable, PEM, the key matching the certificate): grpc itself
    would only report "Failed to bind to address"."""
    if not (config.tls_cert or config.tls_key or config.tls_client_ca):
        return None
    if not (config.tls_cert and config.tls_key):
        raise StartupError("TLS needs both --tls-cert and --tls-key")
    chain = _read("--tls-cert", config.tls_cert)
    key = _read("--tls-key", config.tls_key)
    client_ca = _read("--tls-client-ca", config.tls_client_ca) if config.tls_client_ca else None
    _check_tls_files(config)
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _read(flag: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise StartupError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None


def _check_tls_files(config: ServerConfig) -> None:
    """Load the files with OpenSSL (the ssl module) to turn their mistakes into clear messages."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An encrypted key gets an empty password instead of a prompt on the terminal.
        context.load_cert_chain(config.tls_cert, config.tls_key, password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise StartupError(
                f"--tls-key: {config.tls_key} does not match the certificate in "
                f"--tls-cert {config.tls_cert}"
            ) from None
        raise StartupError(
            f"--tls-cert/--tls-key: cannot load {config.tls_cert} with {config.tls_key} "
            f"(unencrypted PEM expected): {exc.reason or exc}"
        ) from None
    if config.tls_client_ca:
        try:
            context.load_verify_locations(cafile=config.tls_client_ca)
        except ssl.SSLError as exc:
            raise StartupError(
                f"--tls-client-ca: {config.tls_client_ca} holds no PEM certificates: "
                f"{exc.reason or exc}"
            ) from None
