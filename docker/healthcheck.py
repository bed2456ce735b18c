#!/usr/bin/env python3
"""gRPC health probe for container health checks: exit 0 only when the service is SERVING.

    python /usr/local/bin/grpc-healthcheck --addr 127.0.0.1:50051 \
        --service sigmaserve.v1.NoiseService

Calls grpc.health.v1.Health/Check with a deadline (default 2 s). Exit status: 0 SERVING,
1 NOT_SERVING/UNKNOWN/SERVICE_UNKNOWN, 2 the call failed (unreachable, timeout). Needs only grpcio
and grpcio-health-checking, which the sigmaserve wheel already depends on.

A server on TLS: ``--tls-ca ca.pem`` (plus ``--tls-cert``/``--tls-key`` under mutual TLS) and
``--server-name`` when the certificate names the service rather than 127.0.0.1. Health needs no
bearer token (the servers leave it open for probes).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051", help="host:port to probe")
    parser.add_argument("--service", default="", help="service name ('' = the whole server)")
    parser.add_argument("--timeout", type=float, default=2.0, help="deadline in seconds")
    parser.add_argument("--tls-ca", help="PEM CA bundle: connect over TLS")
    parser.add_argument("--tls-cert", help="PEM client certificate (mutual TLS)")
    parser.add_argument("--tls-key", help="PEM key of --tls-cert")
    parser.add_argument("--server-name", help="name to check the server certificate against")
    args = parser.parse_args(argv)

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if args.tls_ca or args.tls_cert:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(args.tls_ca),
            private_key=_read(args.tls_key),
            certificate_chain=_read(args.tls_cert),
        )
        options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
        channel = grpc.secure_channel(args.addr, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.addr)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as err:
            print(
                f"{args.addr} {args.service!r}: {err.code().name} {err.details()}", file=sys.stderr
            )
            return 2
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{args.addr} {args.service!r}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as handle:
        return handle.read()


if __name__ == "__main__":
    raise SystemExit(main())
