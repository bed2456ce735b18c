"""Load, fault tolerance (round_robin + retries over 3 processes) and graceful SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
import sigmaserve
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sigmaserve.server import ServerConfig, server_in_thread
from sigmaserve.v1 import noise_service_pb2 as pb
from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.runtime

SHAPE = (1, 4, 8, 8)


def test_64_concurrent_callers_200_requests_each():
    seeds = list(range(8))
    expected = {
        s: sigmaserve.sample_init_latents(shape=SHAPE, seeds=s).array.tobytes() for s in seeds
    }

    async def run(target: str) -> list[tuple[int, bytes]]:
        async with sigmaserve.AsyncClient(target, timeout=60) as c:

            async def caller(i: int) -> list[tuple[int, bytes]]:
                out = []
                for j in range(200):
                    seed = seeds[(i + j) % len(seeds)]
                    result = await c.sample_init_latents(shape=SHAPE, seeds=seed)
                    out.append((seed, result.array.tobytes()))
                return out

            results = await asyncio.gather(*(caller(i) for i in range(64)))
        return [item for chunk in results for item in chunk]

    config = ServerConfig(port=0, max_concurrent_rpcs=256)
    with server_in_thread(config) as running:
        answers = asyncio.run(run(f"127.0.0.1:{running.port}"))
    assert len(answers) == 64 * 200
    for seed, data in answers:
        assert data == expected[seed]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sigmaserve",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-reflection",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_serving(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server on port {port} did not come up")
            time.sleep(0.1)


@pytest.fixture()
def three_servers() -> Iterator[list[tuple[int, subprocess.Popen]]]:
    servers = []
    try:
        for _ in range(3):
            port = _free_port()
            servers.append((port, _spawn(port)))
        for port, _ in servers:
            _wait_serving(port)
        yield servers
    finally:
        for _, proc in servers:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


def test_round_robin_client_loses_nothing_when_a_server_dies(three_servers):
    target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for port, _ in three_servers)
    expected = sigmaserve.sample_init_latents(shape=SHAPE, seeds=11).array.tobytes()
    errors: list[BaseException] = []
    done = [0]
    lock = threading.Lock()

    def caller(client: sigmaserve.Client) -> None:
        for _ in range(150):
            try:
                got = client.sample_init_latents(shape=SHAPE, seeds=11).array.tobytes()
                assert got == expected
                with lock:
                    done[0] += 1
            except BaseException as exc:  # collected, asserted below
                errors.append(exc)

    with sigmaserve.Client(target, timeout=30) as client:
        threads = [threading.Thread(target=caller, args=(client,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        while done[0] < 300 and not errors:
            time.sleep(0.01)
        three_servers[1][1].send_signal(signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=120)
    assert not errors, errors[:3]
    assert done[0] == 8 * 150


def test_sigterm_lets_in_flight_calls_finish():
    port = _free_port()
    proc = _spawn(port, "--grace-seconds", "6", "--drain-seconds", "1")
    try:
        _wait_serving(port)
        request = pb.SampleInitLatentsRequest(shape=[12, 4, 256, 256], seeds=list(range(12)))
        expected = sigmaserve.sample_init_latents(shape=(12, 4, 256, 256), seeds=list(range(12)))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stream = pb_grpc.NoiseServiceStub(channel).StreamInitLatents(request, timeout=60)
            header = next(stream).header
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
            data = []
            for chunk in stream:
                data.append(chunk.data)
                time.sleep(0.02)  # a slow reader: the call outlives the drain period
        assert header.total_bytes == expected.array.nbytes
        assert b"".join(data) == expected.array.tobytes()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
