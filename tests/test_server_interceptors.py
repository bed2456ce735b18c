"""The cross-cutting behaviour every call gets from the server's interceptors (issue 12, A.3 and
B9, B10): one error mapping for every entry point, Rust panics included; INVALID_ARGUMENT for
unparsable requests of every service; metrics and logs that give each call the status its
caller saw; a metrics endpoint with a bounded number of threads; a keepalive policy that
sigmaserve's own client keeps to.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from sigmaserve.client import common
from sigmaserve.errors import InvalidArgumentError, TooLargeError
from sigmaserve.server import RunningServer, ServerConfig, server_in_thread
from sigmaserve.server.observability import MetricsHTTPServer
from sigmaserve.server.oip import OipServicer
from sigmaserve.server.servicer import NoiseServicer
from sigmaserve.v1 import noise_service_pb2 as pb
from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.runtime

SERVING = health_pb2.HealthCheckResponse.SERVING
NOISE = "sigmaserve.v1.NoiseService"
OIP = "inference.GRPCInferenceService"


class PanicException(BaseException):
    """Stands in for pyo3's ``pyo3_runtime.PanicException``, which derives from BaseException
    (not Exception) and cannot be imported by name."""


def handled(running: RunningServer, service: str, method: str, code: str) -> float | None:
    """grpc_server_handled_total for one status, or None without prometheus-client."""
    registry = running.metrics.registry
    if registry is None:
        return None
    labels = {"grpc_service": service, "grpc_method": method, "grpc_code": code}
    return registry.get_sample_value("grpc_server_handled_total", labels) or 0.0


# ---- one error mapping for every entry point ----------------------------------------------

FAILURE: list[BaseException] = [RuntimeError("unset")]
HEADER = pb.LatentsChunk(header=pb.LatentsHeader(total_bytes=4)).SerializeToString()


async def _failing_unary(self, request, context):
    raise FAILURE[0]


async def _failing_stream(self, request, context):
    yield HEADER  # the stream fails after its first message
    raise FAILURE[0]


@pytest.fixture(scope="module")
def failing_server() -> Iterator[RunningServer]:
    """A server whose GetServerInfo, StreamInitLatents and OIP ServerMetadata raise
    ``FAILURE[0]`` (the handlers are bound at start-up; the classes are restored after)."""
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(NoiseServicer, "GetServerInfo", _failing_unary)
            patch.setattr(NoiseServicer, "StreamInitLatents", _failing_stream)
            patch.setattr(OipServicer, "ServerMetadata", _failing_unary)
            running = stack.enter_context(server_in_thread(ServerConfig(port=0)))
        yield running


def _call(running: RunningServer, entry: str, metadata=()) -> grpc.RpcError:
    """Call one failing entry point with raw bytes; returns the error it ends with."""
    target = f"127.0.0.1:{running.port}"
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as info:
        if entry == "stream":
            call = channel.unary_stream(f"/{NOISE}/StreamInitLatents")(
                b"", timeout=10, metadata=metadata
            )
            assert next(call) == HEADER
            next(call)
        else:
            path = f"/{NOISE}/GetServerInfo" if entry == "unary" else f"/{OIP}/ServerMetadata"
            channel.unary_unary(path)(b"", timeout=10, metadata=metadata)
    return info.value


ENTRIES = {
    "unary": (NOISE, "GetServerInfo"),
    "stream": (NOISE, "StreamInitLatents"),
    "oip": (OIP, "ServerMetadata"),
}


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize(
    "failure", [RuntimeError("a bug"), PanicException("index out of bounds")], ids=["bug", "panic"]
)
def test_an_escaping_exception_is_internal_with_a_logged_request_id(
    failing_server, caplog, entry, failure
):
    caplog.set_level(logging.INFO, logger="sigmaserve.server")
    FAILURE[0] = failure
    service, method = ENTRIES[entry]
    before = handled(failing_server, service, method, "INTERNAL")
    request_id = f"req-{entry}-{type(failure).__name__}"
    err = _call(failing_server, entry, metadata=(("x-request-id", request_id),))
    assert err.code() == grpc.StatusCode.INTERNAL, err.details()
    assert err.details() == f"internal error (request id {request_id}, logged on the server)"
    logged = [r for r in caplog.records if r.getMessage().startswith("internal error")]
    assert [(r.request_id, r.exc_info[0]) for r in logged] == [(request_id, type(failure))]
    assert str(failure) in logged[0].getMessage()
    if before is not None:
        assert handled(failing_server, service, method, "INTERNAL") == before + 1
        assert handled(failing_server, service, method, "UNKNOWN") == 0


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_caller_mistakes_raised_anywhere_keep_their_codes(failing_server, entry):
    FAILURE[0] = InvalidArgumentError("seeds: 3 seeds for 2 items", "seeds")
    err = _call(failing_server, entry)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err)
    bad = error_details_pb2.BadRequest()
    assert status is not None and status.details[0].Unpack(bad)
    assert bad.field_violations[0].field == "seeds"

    FAILURE[0] = TooLargeError("shape: the reply would be 9 GiB", "shape")
    err = _call(failing_server, entry)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert common.translate_error(err).__class__ is TooLargeError


@pytest.mark.parametrize(
    "path",
    [
        f"/{NOISE}/GetSchedule",
        f"/{NOISE}/SampleInitLatents",
        f"/{OIP}/ModelInfer",
        "/grpc.health.v1.Health/Check",
    ],
)
def test_unparsable_requests_are_invalid_argument_for_every_service(target, path):
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(path)(b"\xff\xff\xff\xff", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request: not a valid" in info.value.details()


def test_unparsable_stream_request_is_invalid_argument(target):
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_stream(f"/{NOISE}/StreamInitLatents")(b"\x0a\x05\x01", timeout=10)
        with pytest.raises(grpc.RpcError) as info:
            next(call)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---- metrics and logs: the status each caller saw -----------------------------------------


def test_unauthenticated_calls_are_counted_and_logged(caplog):
    caplog.set_level(logging.INFO, logger="sigmaserve.server")
    with (
        server_in_thread(ServerConfig(port=0, token="s3cret")) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = pb_grpc.NoiseServiceStub(channel)
        with pytest.raises(grpc.RpcError) as unary:
            stub.GetSchedule(pb.GetScheduleRequest(scheduler="EulerDiscreteScheduler"))
        with pytest.raises(grpc.RpcError) as stream:
            next(stub.StreamInitLatents(pb.SampleInitLatentsRequest(), timeout=10))
    # (read once the server has stopped: it finishes counting a call after sending its status)
    counts = [
        handled(running, NOISE, m, "UNAUTHENTICATED") for m in ("GetSchedule", "StreamInitLatents")
    ]
    assert unary.value.code() == stream.value.code() == grpc.StatusCode.UNAUTHENTICATED
    if counts[0] is not None:
        assert counts == [1, 1]
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().endswith(")")]
    assert sum("refused: UNAUTHENTICATED (peer ipv4:127.0.0.1:" in m for m in refusals) == 2


def _slow_stream(channel: grpc.Channel, timeout: float) -> grpc.Call:
    """A StreamInitLatents whose caller reads the header, then nothing."""
    request = pb.SampleInitLatentsRequest(shape=[4, 4, 256, 256], seeds=[1, 2, 3, 4])
    call = pb_grpc.NoiseServiceStub(channel).StreamInitLatents(request, timeout=timeout)
    assert next(call).HasField("header")
    return call


SLOW_READER = [("grpc.http2.bdp_probe", 0)]  # the client keeps its 64 KiB window


def test_calls_cut_at_shutdown_are_unavailable_not_cancelled_by_the_caller(caplog):
    caplog.set_level(logging.INFO, logger="sigmaserve.server")
    with server_in_thread(ServerConfig(port=0)) as running:
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}", options=SLOW_READER)
        call = _slow_stream(channel, timeout=60)
    # leaving the block stopped the server with 1 s of grace: the slow stream was cut
    with pytest.raises(grpc.RpcError) as info:
        for _ in call:
            pass
    channel.close()
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("StreamInitLatents cut by the server shutdown (grace period over) after")
        for m in messages
    ), messages
    assert not any("cancelled by the caller" in m for m in messages)
    if running.metrics.registry is not None:
        codes = {
            code: handled(running, NOISE, "StreamInitLatents", code)
            for code in ("UNAVAILABLE", "UNKNOWN", "CANCELLED")
        }
        assert codes == {"UNAVAILABLE": 1, "UNKNOWN": 0, "CANCELLED": 0}


def test_cancelled_and_expired_streams_get_their_own_statuses(caplog):
    caplog.set_level(logging.INFO, logger="sigmaserve.server")
    with (
        server_in_thread(ServerConfig(port=0)) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}", options=SLOW_READER) as channel,
    ):
        cancelled = _slow_stream(channel, timeout=60)
        cancelled.cancel()
        expired = _slow_stream(channel, timeout=1)
        with pytest.raises(grpc.RpcError) as info:
            for _ in expired:
                time.sleep(0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("StreamInitLatents cancelled by the caller") for m in messages) == 1
    assert sum(m.startswith("StreamInitLatents ended by its deadline") for m in messages) == 1
    if running.metrics.registry is not None:
        assert handled(running, NOISE, "StreamInitLatents", "CANCELLED") == 1
        assert handled(running, NOISE, "StreamInitLatents", "DEADLINE_EXCEEDED") == 1


# ---- the metrics endpoint -----------------------------------------------------------------


def test_slow_metrics_connections_do_not_make_a_thread_each():
    pytest.importorskip("prometheus_client")
    with server_in_thread(ServerConfig(port=0, metrics_port=-1)) as running:
        address = ("127.0.0.1", running.metrics_port)
        url = f"http://127.0.0.1:{running.metrics_port}/metrics"
        baseline = threading.active_count()
        idle = [socket.create_connection(address, timeout=10) for _ in range(300)]
        try:
            # Accepted in order: once this one is answered or refused, all 300 were accepted.
            with contextlib.suppress(*REFUSED):
                urllib.request.urlopen(url, timeout=10).read()
            extra_threads = threading.active_count() - baseline
        finally:
            for sock in idle:
                sock.close()
        text = _eventually_read(url)
    assert extra_threads <= MetricsHTTPServer.WORKERS
    assert "grpc_server_started_total" in text


REFUSED = (urllib.error.URLError, ConnectionError, http.client.HTTPException)


def _eventually_read(url: str, attempts: int = 100) -> str:
    for _ in range(attempts - 1):
        try:
            return urllib.request.urlopen(url, timeout=10).read().decode()
        except REFUSED:
            time.sleep(0.1)
    return urllib.request.urlopen(url, timeout=10).read().decode()


# ---- keepalive ----------------------------------------------------------------------------


def test_the_server_accepts_the_keepalive_of_sigmaserves_client():
    assert ServerConfig().min_ping_interval_ms < common.KEEPALIVE_TIME_MS
    options = dict(common.channel_options(common.DEFAULT_MAX_RECEIVE))
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.keepalive_time_ms"] == common.KEEPALIVE_TIME_MS


def test_an_idle_client_keeps_its_connection(capfd):
    """The client's real keepalive options, with the intervals shrunk (client 300 ms, server
    accepting 100 ms) so that an idle gap of 3 s holds 10 pings: grpc's ping-strike policy
    would have sent GOAWAY too_many_pings after the third ping if the server ignored its
    configured interval (it then allows one ping per 5 minutes)."""
    config = ServerConfig(port=0, min_ping_interval_ms=100)
    options = common.channel_options(common.DEFAULT_MAX_RECEIVE, [("grpc.keepalive_time_ms", 300)])
    states: list[grpc.ChannelConnectivity] = []
    with (
        server_in_thread(config) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}", options=options) as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == SERVING
        channel.subscribe(states.append)
        time.sleep(3.0)  # idle: only keepalive pings on the connection
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == SERVING
        channel.unsubscribe(states.append)
    assert set(states) == {grpc.ChannelConnectivity.READY}, states
    assert "too_many_pings" not in capfd.readouterr().err
