#!/usr/bin/env python3
"""gRPC health probe for container health checks: exit 0 only when the service is SERVING.

    python /usr/local/bin/grpc-healthcheck --addr 127.0.0.1:50051 \
        --service sigmaserve.v1.NoiseService

Calls grpc.health.v1.Health/Check with a deadline (default 2 s). Exit status: 0 SERVING,
1 NOT_SERVING/UNKNOWN/SERVICE_UNKNOWN, 2 the call failed (unreachable, timeout). Needs only grpcio
and grpcio-health-checking, which the sigmaserve wheel already depends on.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051", help="host:port to probe")
    parser.add_argument("--service", default="", help="service name ('' = the whole server)")
    parser.add_argument("--timeout", type=float, default=2.0, help="deadline in seconds")
    args = parser.parse_args(argv)

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(args.addr) as channel:
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


if __name__ == "__main__":
    raise SystemExit(main())
