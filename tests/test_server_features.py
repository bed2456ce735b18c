"""Hot-path encoding, streaming, limits, deadlines, auth, TLS, metrics and OIP (in-process)."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
import sigmaserve
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sigmaserve.client.common import resolve_target
from sigmaserve.errors import TooLargeError
from sigmaserve.server import ServerConfig, server_in_thread
from sigmaserve.server.config import add_arguments, from_args
from sigmaserve.v1 import noise_service_pb2 as pb
from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def stub(target):
    with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", -1)]) as ch:
        yield pb_grpc.NoiseServiceStub(ch)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_hand_built_reply_parses_as_the_local_latents(dtype):
    from sigmaserve import tensors
    from sigmaserve.latents import latents_request
    from sigmaserve.server.service import LatentsService

    local = sigmaserve.sample_init_latents(
        shape=(2, 4, 8, 8), seeds=[3, 2**64 - 1], dtype=dtype, sigma=1.5
    )
    request = latents_request(shape=(2, 4, 8, 8), seeds=[3, 2**64 - 1], dtype=dtype, sigma=1.5)
    reply = LatentsService(ServerConfig()).unary(request)
    reference = pb.SampleInitLatentsResponse(
        init_noise_sigma=local.init_noise_sigma,
        seeds=[3, 2**64 - 1],
        latents=tensors.to_proto(local.array, dtype),
    )
    assert pb.SampleInitLatentsResponse.FromString(reply.data) == reference
    reply.reservation.release()


def _stream(stub, request):
    chunks = list(stub.StreamInitLatents(request, timeout=60))
    assert chunks[0].HasField("header")
    return chunks[0].header, [c.data for c in chunks[1:]]


@pytest.mark.parametrize(
    "fields",
    [
        {"shape": [5, 4, 64, 96], "seeds": [1, 2, 3, 4, 5]},  # item-wise, several items a chunk
        {"shape": [2, 4, 256, 320], "seeds": [9, 8], "dtype": pb.DATA_TYPE_FP16},  # items > chunk
        {"shape": [3, 4, 40, 40], "seeds": [7], "seed_mode": pb.SEED_MODE_BATCH},  # one draw
        {  # one draw continued over many chunks, scaled, with a tail block
            "shape": [3, 4, 257, 259],
            "seeds": [2**64 - 5],
            "seed_mode": pb.SEED_MODE_BATCH,
            "dtype": pb.DATA_TYPE_FP16,
            "scheduler": "EulerDiscreteScheduler",
        },
        {"shape": [2, 3, 333, 257], "seeds": [4, 5], "dtype": pb.DATA_TYPE_FP64, "sigma": 2.5},
        {  # one CUDA draw on a small GPU (many grid iterations), range by range
            "shape": [2, 4, 200, 200],
            "seeds": [11],
            "seed_mode": pb.SEED_MODE_BATCH,
            "source": pb.NOISE_SOURCE_CUDA,
            "noise_options": {"gpu": "t4"},
            "sigma": 1.5,
        },
        {  # NV items larger than a chunk
            "shape": [2, 4, 256, 320],
            "seeds": [3, 4],
            "source": pb.NOISE_SOURCE_A1111_NV,
        },
        {"shape": [2, 4, 64, 64], "seeds": [4, 5], "seed_mode": pb.SEED_MODE_A1111},  # whole
        {
            "width": 512,
            "height": 512,
            "batch_size": 2,
            "seeds": [1, 2],
            "scheduler": "LMSDiscreteScheduler",
            "num_inference_steps": 30,
        },
    ],
)
def test_stream_equals_unary(stub, fields, server):
    request = pb.SampleInitLatentsRequest(**fields)
    unary = stub.SampleInitLatents(request, timeout=60)
    header, data = _stream(stub, request)
    assert header.total_bytes == len(unary.latents.data)
    assert list(header.shape) == list(unary.latents.shape)
    assert header.init_noise_sigma == unary.init_noise_sigma
    assert list(header.seeds) == list(unary.seeds)
    assert b"".join(data) == unary.latents.data
    assert all(len(d) <= server.config.stream_chunk_bytes for d in data)


def test_server_info_and_ping(client, stub, server):
    info = client.server_info()
    assert info.max_unary_reply_bytes == server.config.max_unary_reply_bytes
    assert info.max_elements == server.config.max_elements
    assert info.stream_chunk_bytes == server.config.stream_chunk_bytes
    assert stub.Ping(pb.PingRequest(), timeout=10).data == b""
    assert stub.Ping(pb.PingRequest(reply_bytes=1000), timeout=10).data == bytes(1000)
    with pytest.raises(grpc.RpcError) as info_err:
        stub.Ping(pb.PingRequest(reply_bytes=-1), timeout=10)
    assert info_err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_client_switches_to_streaming_when_the_server_refuses_unary(target):
    # The session server's unary limit is 8 MiB; the client's own threshold is 32 MiB.
    with sigmaserve.Client(target) as c:
        got = c.sample_init_latents(shape=(3, 4, 256, 256), seeds=[4, 5, 6])  # 3 MiB: unary
        big = c.sample_init_latents(shape=(10, 4, 256, 256), seeds=list(range(10)))  # 10 MiB
    assert (
        got.array.tobytes()
        == sigmaserve.sample_init_latents(shape=(3, 4, 256, 256), seeds=[4, 5, 6]).array.tobytes()
    )
    expected = sigmaserve.sample_init_latents(shape=(10, 4, 256, 256), seeds=list(range(10)))
    assert big.array.tobytes() == expected.array.tobytes()


def test_unparsable_request_is_invalid_argument(target):
    with grpc.insecure_channel(target) as channel:
        raw = channel.unary_unary("/sigmaserve.v1.NoiseService/SampleInitLatents")
        with pytest.raises(grpc.RpcError) as info:
            raw(b"\xff\xff\xff\xff", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_expired_deadline_and_cancelled_stream(stub, client):
    request = pb.SampleInitLatentsRequest(shape=[16, 4, 256, 256], seeds=list(range(16)))
    with pytest.raises(grpc.RpcError) as info:
        list(stub.StreamInitLatents(request, timeout=0.001))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    call = stub.StreamInitLatents(request, timeout=60)
    assert next(call).HasField("header")
    call.cancel()
    assert client.get_schedule("EulerDiscreteScheduler", 5).timesteps.shape == (5,)


def test_limits_from_environment_and_flags():
    import argparse

    config = ServerConfig.from_env(
        {
            "SIGMASERVE_MAX_ELEMENTS": "1000",
            "SIGMASERVE_MAX_CONCURRENT_RPCS": "3",
            "SIGMASERVE_TOKEN": "t",
            "SIGMASERVE_OIP": "false",
        }
    )
    assert (config.max_elements, config.max_concurrent_rpcs, config.token, config.oip) == (
        1000,
        3,
        "t",
        False,
    )
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--max-elements",
            "77",
            "--max-unary-reply-bytes",
            "1024",
            "--metrics-port",
            "9100",
            "--no-oip",
        ]
    )
    config = from_args(args)
    assert (config.max_elements, config.max_unary_reply_bytes, config.metrics_port) == (
        77,
        1024,
        9100,
    )
    assert config.oip is False


def test_element_limit_from_config():
    with (
        server_in_thread(ServerConfig(port=0, max_elements=1000)) as running,
        sigmaserve.Client(f"127.0.0.1:{running.port}") as c,
    ):
        with pytest.raises(TooLargeError):
            c.sample_init_latents(shape=(1, 4, 16, 16), seeds=1)
        assert c.sample_init_latents(shape=(1, 4, 8, 8), seeds=1).shape == (1, 4, 8, 8)


def test_endpoint_lists_become_round_robin_targets():
    assert resolve_target(["127.0.0.1:1", "127.0.0.1:2"]) == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert resolve_target("dns:///noise:50051") == "dns:///noise:50051"


def test_metrics_endpoint_counts_requests_and_codes():
    pytest.importorskip("prometheus_client")  # the metrics extra
    config = ServerConfig(port=0, metrics_port=-1)  # negative: any free port
    with server_in_thread(config) as running:
        with sigmaserve.Client(f"127.0.0.1:{running.port}") as c:
            c.sample_init_latents(shape=(1, 4, 8, 8), seeds=1)
            with pytest.raises(sigmaserve.InvalidArgumentError):
                c.sample_init_latents(shape=(1, 4, 8, 8), seeds=[1, 2])
        url = f"http://127.0.0.1:{running.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
    assert 'grpc_server_handled_total{grpc_code="OK",grpc_method="SampleInitLatents"' in text
    assert 'grpc_code="INVALID_ARGUMENT",grpc_method="SampleInitLatents"' in text
    assert "grpc_server_handling_seconds_bucket" in text
    assert 'sigmaserve_reply_bytes_total{grpc_method="SampleInitLatents"' in text


def test_bearer_token_auth_keeps_health_open():
    with server_in_thread(ServerConfig(port=0, token="s3cret")) as running:
        target = f"127.0.0.1:{running.port}"
        for token in (None, "wrong"):
            with sigmaserve.Client(target, token=token) as c:
                with pytest.raises(sigmaserve.RemoteError) as info:
                    c.get_schedule("EulerDiscreteScheduler", 5)
                assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
                with pytest.raises(sigmaserve.RemoteError) as info:
                    c.stream_init_latents(shape=(1, 4, 8, 8), seeds=1)
                assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
        with sigmaserve.Client(target, token="s3cret") as c:
            assert c.sample_init_latents(shape=(1, 4, 8, 8), seeds=1).shape == (1, 4, 8, 8)
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=10
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_tls(certs):
    config = ServerConfig(
        port=0, tls_cert=str(certs / "server.pem"), tls_key=str(certs / "server.key")
    )
    with server_in_thread(config) as running:
        target = f"127.0.0.1:{running.port}"
        with sigmaserve.Client(target, root_certificates=str(certs / "ca.pem")) as c:
            assert c.sample_init_latents(shape=(1, 4, 8, 8), seeds=1).shape == (1, 4, 8, 8)
        with (
            sigmaserve.Client(target, timeout=5) as plain,
            pytest.raises(sigmaserve.RemoteError) as info,
        ):
            plain.get_schedule("EulerDiscreteScheduler", 5)
        assert info.value.code == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls(certs):
    config = ServerConfig(
        port=0,
        tls_cert=str(certs / "server.pem"),
        tls_key=str(certs / "server.key"),
        tls_client_ca=str(certs / "ca.pem"),
    )
    with server_in_thread(config) as running:
        target = f"127.0.0.1:{running.port}"
        with sigmaserve.Client(
            target,
            root_certificates=str(certs / "ca.pem"),
            private_key=str(certs / "client.key"),
            certificate_chain=str(certs / "client.pem"),
        ) as c:
            assert c.sample_init_latents(shape=(1, 4, 8, 8), seeds=1).shape == (1, 4, 8, 8)
        with (
            sigmaserve.Client(target, root_certificates=str(certs / "ca.pem"), timeout=5) as c,
            pytest.raises(sigmaserve.RemoteError) as info,
        ):
            c.get_schedule("EulerDiscreteScheduler", 5)
        assert info.value.code == grpc.StatusCode.UNAVAILABLE


def test_torch_results(client):
    torch = pytest.importorskip("torch")

    got = client.sample_init_latents_torch(shape=(1, 4, 8, 8), seeds=3, seed_mode="batch")
    expected = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(3))
    assert torch.equal(got, expected)
    bf16 = client.sample_init_latents_torch(shape=(1, 4, 8, 8), seeds=3, dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16
    if torch.cuda.is_available():
        on_gpu = client.sample_init_latents_torch(shape=(1, 4, 8, 8), seeds=3, device="cuda")
        assert torch.equal(on_gpu.cpu(), got)
