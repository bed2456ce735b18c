"""Server settings: command-line flags with ``SIGMASERVE_*`` environment defaults."""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass, fields

MIB = 1 << 20


class StartupError(RuntimeError):
    """The server cannot start as configured. The message is one line for the operator;
    ``sigmaserve serve`` prints it and exits with status 2."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``sigmaserve serve`` can be told; each field has a SIGMASERVE_<NAME> variable."""

    host: str = "127.0.0.1"
    port: int = 50051
    # Largest tensor one request may ask for (elements); checked before anything is allocated.
    max_elements: int = 1 << 28
    # Largest unary reply; bigger tensors must use StreamInitLatents.
    max_unary_reply_bytes: int = 64 * MIB
    # Requests are tiny: keep grpcio's 4 MiB receive limit.
    max_receive_message_bytes: int = 4 * MIB
    # Calls to NoiseService, the OIP facade and reflection served at once; more are refused with
    # RESOURCE_EXHAUSTED at once. Health checks and the OIP probes are not counted: they are
    # answered always.
    max_concurrent_rpcs: int = 64
    # grpc.health.v1.Health/Watch streams (open to anyone, like every health call) held at once;
    # they never end by themselves, so they get their own small limit.
    max_health_watches: int = 16
    # Shortest interval between HTTP/2 pings without data the server accepts; a client pinging
    # more often is sent GOAWAY too_many_pings. Below sigmaserve's own client keepalive
    # (client.common.KEEPALIVE_TIME_MS, 30 s) so idle clients keep their connection.
    min_ping_interval_ms: int = 20_000
    stream_chunk_bytes: int = 1 * MIB
    # Working memory all calls in flight may hold together (replies, stream chunks, schedules);
    # a call that does not fit is refused with RESOURCE_EXHAUSTED. The default leaves room for
    # the process itself inside the 1 GiB the shipped compose file and k8s manifests allow.
    memory_budget_bytes: int = 512 * MIB
    grace_seconds: float = 10.0
    # Seconds between health turning NOT_SERVING and the server refusing new calls (lets load
    # balancers and Kubernetes endpoints notice the drain first).
    drain_seconds: float = 0.0
    reflection: bool = True
    log_level: str = "INFO"
    # "text" or "json" (one JSON object per line, with the request id).
    log_format: str = "text"
    # Bearer token every call except grpc.health.v1.Health must carry; token_file wins over token.
    token: str = ""
    token_file: str = ""
    # PEM files: server certificate chain and key enable TLS; a client CA requires mutual TLS.
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Prometheus metrics on http://metrics_host:metrics_port/metrics; 0 leaves them off.
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    # Serve the Open Inference Protocol facade (inference.GRPCInferenceService) on the same port.
    oip: bool = True

    def bearer_token(self) -> str:
        """The configured token (read from token_file when set), or "" for no auth.

        A token file that cannot be read, or holds only whitespace, and a token of only
        whitespace are refused: starting without auth would be a silent surprise."""
        if self.token_file:
            try:
                with open(self.token_file, encoding="utf-8") as handle:
                    token = handle.read().strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise StartupError(
                    f"--token-file: cannot read {self.token_file}: {_reason(exc)}"
                ) from None
            if not token:
                raise StartupError(
                    f"--token-file: {self.token_file} is empty; refusing to start without auth"
                )
            return token
        if self.token and not self.token.strip():
            raise StartupError("--token: the token is blank; refusing to start without auth")
        return self.token

    def validate(self) -> None:
        """Refuse settings no server can run with (StartupError naming the flag)."""
        if not isinstance(logging.getLevelName(self.log_level.upper()), int):
            raise StartupError(f"--log-level: unknown level {self.log_level!r}")
        if self.log_format not in ("text", "json"):
            raise StartupError(f"--log-format: 'text' or 'json', got {self.log_format!r}")
        for name in ("max_concurrent_rpcs", "max_elements", "stream_chunk_bytes"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise StartupError(f"{flag}: must be at least 1, got {getattr(self, name)}")
        if self.max_health_watches < 0:
            raise StartupError(f"--max-health-watches: must be >= 0, got {self.max_health_watches}")

    def listen_address(self) -> str:
        """``host:port`` as grpc wants it: IPv6 literals in brackets (``[::1]:50051``)."""
        return join_host_port(self.host, self.port)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> ServerConfig:
        """Defaults, then ``SIGMASERVE_*`` variables, then explicit ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"SIGMASERVE_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _parse(raw, f.type, f.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def join_host_port(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def _reason(exc: BaseException) -> str:
    """An OS error's text without the errno prefix (``No such file or directory``)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _parse(raw: str, type_name: object, name: str) -> object:
    try:
        if type_name in ("int", int):
            return int(raw)
        if type_name in ("float", float):
            return float(raw)
        if type_name in ("bool", bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
    except ValueError:
        raise StartupError(f"SIGMASERVE_{name.upper()}: cannot parse {raw!r}") from None
    return raw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``serve`` flags; unset flags fall back to the environment, then the defaults."""
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 50051; 0 picks one)")
    parser.add_argument("--max-elements", type=int, help="largest tensor per request, elements")
    parser.add_argument("--max-unary-reply-bytes", type=int, help="largest unary reply, bytes")
    parser.add_argument("--max-receive-message-bytes", type=int, help="largest request, bytes")
    parser.add_argument(
        "--max-concurrent-rpcs",
        type=int,
        help="calls served at once (health checks not counted); more get RESOURCE_EXHAUSTED",
    )
    parser.add_argument(
        "--max-health-watches", type=int, help="grpc.health.v1.Health/Watch streams at once"
    )
    parser.add_argument(
        "--min-ping-interval-ms",
        type=int,
        help="shortest client ping interval accepted without data (ms); keep it below the "
        "clients' keepalive time (sigmaserve.Client: 30000)",
    )
    parser.add_argument("--stream-chunk-bytes", type=int, help="StreamInitLatents chunk size")
    parser.add_argument(
        "--memory-budget-bytes",
        type=int,
        help="working memory of all calls in flight (default 512 MiB); over it: RESOURCE_EXHAUSTED",
    )
    parser.add_argument("--grace-seconds", type=float, help="shutdown grace period")
    parser.add_argument(
        "--no-reflection",
        dest="reflection",
        action="store_const",
        const=False,
        default=None,
        help="do not serve gRPC server reflection (grpcurl then needs the .proto files)",
    )
    parser.add_argument(
        "--drain-seconds", type=float, help="NOT_SERVING before refusing calls on shutdown"
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument("--log-format", choices=["text", "json"], help="log line format")
    parser.add_argument(
        "--token",
        help="require 'authorization: Bearer TOKEN' (not for health). The value shows in the "
        "process list: prefer --token-file or SIGMASERVE_TOKEN",
    )
    parser.add_argument(
        "--token-file", help="read the bearer token from this file (an empty file is an error)"
    )
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve TLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--tls-client-ca", help="PEM CA bundle: require client certificates")
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (0: off)")
    parser.add_argument("--metrics-host", help="address of the metrics endpoint")
    parser.add_argument(
        "--no-oip",
        dest="oip",
        action="store_const",
        const=False,
        default=None,
        help="do not serve the Open Inference Protocol facade",
    )


def from_args(args: argparse.Namespace) -> ServerConfig:
    names = {f.name for f in fields(ServerConfig)}
    return ServerConfig.from_env(**{k: v for k, v in vars(args).items() if k in names})
