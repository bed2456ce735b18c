"""A connection lost mid-call: the clients reissue the call (every NoiseService RPC is
idempotent and deterministic) instead of failing, as a replica killed under load does to them.

grpc's own retry policy stops once a call is committed (the server's first response headers or
message arrived); these tests commit every call before cutting it, so only the clients' reissue
can save it. The cutting server is a proxy in front of the session's real server.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import numpy as np
import pytest
from sigmaserve import AsyncClient, Client
from sigmaserve.client.common import REISSUE_DELAYS_S, RemoteError
from sigmaserve.v1 import noise_service_pb2 as pb
from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.runtime

SERVICE = "sigmaserve.v1.NoiseService"
UNARY = {
    "GetServerInfo": (pb.GetServerInfoRequest, pb.GetServerInfoResponse),
    "SampleInitLatents": (pb.SampleInitLatentsRequest, pb.SampleInitLatentsResponse),
}


class CuttingProxy:
    """Forwards NoiseService calls to ``target``; the first ``cuts`` attempts of each method
    are committed (headers, or the first stream message) and then end UNAVAILABLE, as when a
    replica dies mid-call."""

    def __init__(self, target: str, cuts: int) -> None:
        self.cuts = cuts
        self.attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._channel = grpc.insecure_channel(target)
        self._stub = pb_grpc.NoiseServiceStub(self._channel)
        handlers: dict[str, grpc.RpcMethodHandler] = {
            name: grpc.unary_unary_rpc_method_handler(
                self._unary(name),
                request_deserializer=request.FromString,
                response_serializer=response.SerializeToString,
            )
            for name, (request, response) in UNARY.items()
        }
        handlers["StreamInitLatents"] = grpc.unary_stream_rpc_method_handler(
            self._stream,
            request_deserializer=pb.SampleInitLatentsRequest.FromString,
            response_serializer=pb.LatentsChunk.SerializeToString,
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def _cut(self, name: str) -> bool:
        with self._lock:
            self.attempts[name] += 1
            return self.attempts[name] <= self.cuts

    def _unary(self, name: str) -> Any:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            if self._cut(name):
                context.send_initial_metadata((("x-replica", "dying"),))
                context.abort(grpc.StatusCode.UNAVAILABLE, "Stream removed")
            return getattr(self._stub, name)(request, timeout=30)

        return handle

    def _stream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        cut = self._cut("StreamInitLatents")
        for index, chunk in enumerate(self._stub.StreamInitLatents(request, timeout=30)):
            yield chunk
            if cut and index == 1:
                context.abort(grpc.StatusCode.UNAVAILABLE, "Socket closed")

    def close(self) -> None:
        self._server.stop(None)
        self._channel.close()


@pytest.fixture()
def proxy(target: str, request: pytest.FixtureRequest) -> Iterator[CuttingProxy]:
    cutting = CuttingProxy(target, cuts=getattr(request, "param", 1))
    yield cutting
    cutting.close()


SMALL = {"shape": (2, 4, 16, 16), "seeds": [5, 6]}
LARGE = {"shape": (1, 4, 128, 128), "seeds": [7]}  # over the stream threshold below


def test_a_call_cut_mid_flight_is_reissued(proxy: CuttingProxy, client: Client) -> None:
    with Client(f"127.0.0.1:{proxy.port}", timeout=30, stream_threshold_bytes=64 << 10) as cut:
        assert cut.server_info() == client.server_info()
        small = cut.sample_init_latents(**SMALL)
        large = cut.sample_init_latents(**LARGE)
    assert np.array_equal(small.array, client.sample_init_latents(**SMALL).array)
    assert np.array_equal(large.array, client.stream_init_latents(**LARGE).array)
    # Each method: the cut attempt, then the reissue.
    assert proxy.attempts == {"GetServerInfo": 2, "SampleInitLatents": 2, "StreamInitLatents": 2}


def test_the_async_client_reissues_too(proxy: CuttingProxy, client: Client) -> None:
    async def fetch() -> tuple[Any, Any]:
        target = f"127.0.0.1:{proxy.port}"
        async with AsyncClient(target, timeout=30, stream_threshold_bytes=64 << 10) as cut:
            return await cut.sample_init_latents(**SMALL), await cut.sample_init_latents(**LARGE)

    small, large = asyncio.run(fetch())
    assert np.array_equal(small.array, client.sample_init_latents(**SMALL).array)
    assert np.array_equal(large.array, client.stream_init_latents(**LARGE).array)
    assert proxy.attempts == {"SampleInitLatents": 2, "StreamInitLatents": 2}


@pytest.mark.parametrize("proxy", [100], indirect=True)
def test_a_server_that_keeps_failing_is_reported(proxy: CuttingProxy) -> None:
    with (
        Client(f"127.0.0.1:{proxy.port}", timeout=30) as cut,
        pytest.raises(RemoteError) as failed,
    ):
        cut.server_info()
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE
    assert proxy.attempts["GetServerInfo"] == 1 + len(REISSUE_DELAYS_S)
