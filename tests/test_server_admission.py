"""Who may hold the server's capacity: unauthenticated health Watch streams may not starve
authenticated calls, and health answers however busy the work services are (issue 12, B1, B7).
"""

from __future__ import annotations

import time
from collections import Counter

import grpc
import pytest
import sigmaserve
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sigmaserve.server import ServerConfig, server_in_thread
from sigmaserve.v1 import noise_service_pb2 as pb
from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.runtime

SERVING = health_pb2.HealthCheckResponse.SERVING


def _check(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def _open_watches(channel: grpc.Channel, count: int) -> tuple[list, Counter]:
    """``count`` Watch streams; each one either sends the current status or is refused."""
    stub = health_pb2_grpc.HealthStub(channel)
    calls = [
        stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30) for _ in range(count)
    ]
    outcomes: Counter = Counter()
    for call in calls:
        try:
            assert next(call).status == SERVING
            outcomes["watching"] += 1
        except grpc.RpcError as err:
            outcomes[err.code().name] += 1
    return calls, outcomes


def test_unauthenticated_watch_streams_hold_no_capacity_of_authenticated_calls():
    """80 Watch streams without a token (more than max_concurrent_rpcs, 64): authenticated
    calls of every kind and health checks still succeed; the Watch streams beyond their own
    limit are refused."""
    config = ServerConfig(port=0, token="s3cret")
    with server_in_thread(config) as running:
        target = f"127.0.0.1:{running.port}"
        with grpc.insecure_channel(target) as attacker:
            watches, outcomes = _open_watches(attacker, 80)
            try:
                with sigmaserve.Client(target, token="s3cret", timeout=10) as client:
                    schedule = client.get_schedule("EulerDiscreteScheduler", 10)
                    unary = client.sample_init_latents(shape=(1, 4, 8, 8), seeds=1)
                    streamed = client.stream_init_latents(shape=(1, 4, 8, 8), seeds=1)
                with grpc.insecure_channel(target) as probe:
                    statuses = {
                        _check(probe),
                        _check(attacker),
                        _check(probe, "sigmaserve.v1.NoiseService"),
                    }
            finally:
                for call in watches:
                    call.cancel()
    assert schedule.timesteps.shape == (10,)
    assert streamed.array.tobytes() == unary.array.tobytes()
    assert statuses == {SERVING}
    assert outcomes == {
        "watching": config.max_health_watches,
        "RESOURCE_EXHAUSTED": 80 - config.max_health_watches,
    }


def test_health_answers_while_the_work_services_are_saturated():
    """64 slow-reading streams hold every work slot: another work call is refused at once,
    Health/Check still answers SERVING, and the slots come back when the streams end."""
    config = ServerConfig(port=0)
    request = pb.SampleInitLatentsRequest(shape=[4, 4, 256, 256], seeds=[1, 2, 3, 4])
    # Without BDP probing the client keeps its 64 KiB flow-control window: a slow reader.
    options = [("grpc.http2.bdp_probe", 0)]
    with (
        server_in_thread(config) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}", options=options) as channel,
    ):
        stub = pb_grpc.NoiseServiceStub(channel)
        streams = [stub.StreamInitLatents(request, timeout=60) for _ in range(64)]
        try:
            assert all(next(s).HasField("header") for s in streams)
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=10)
            health = {_check(channel), _check(channel, "sigmaserve.v1.NoiseService")}
            # the OIP facade's liveness probe too (ServerLiveResponse(live=True) on the wire)
            live = channel.unary_unary("/inference.GRPCInferenceService/ServerLive")(
                b"", timeout=10
            )
        finally:
            for s in streams:
                s.cancel()
        info = _eventually(lambda: stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=10))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "64 calls" in refused.value.details()
    assert health == {SERVING}
    assert live == b"\x08\x01"
    assert info.max_concurrent_rpcs == 64


def _eventually(call, attempts: int = 100):
    """``call()`` once the server has seen the cancelled streams end (retries RESOURCE_EXHAUSTED
    for up to about 10 s)."""
    for _ in range(attempts - 1):
        try:
            return call()
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
        time.sleep(0.1)
    return call()
