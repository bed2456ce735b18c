"""The wire as grpcurl and other JSON clients see it (issue 16): requests written as JSON
(``json_format``, the proto3 JSON mapping grpcurl uses) against a running server, replies read
back as JSON: negative seeds through ``signed_seeds``, tensor elements as numbers through
``tensor_values``, without changing what existing clients send or get."""

from __future__ import annotations

import dataclasses
import json
import urllib.request

import grpc
import numpy as np
import pytest
import sigmaserve
import torch
from conftest import SD15_SCHEDULER_CONFIG
from diffusers import EulerDiscreteScheduler
from google.protobuf import json_format
from sigmaserve import wire
from sigmaserve.server import ServerConfig, server_in_thread
from sigmaserve.tensors import MAX_TENSOR_VALUES
from sigmaserve.v1 import noise_service_pb2 as pb

NOISE = "/sigmaserve.v1.NoiseService/"


def call_json(target: str, method: str, request_json: str, request_type: type) -> dict:
    """What ``grpcurl -d REQUEST_JSON`` does: the JSON parsed into the request message, the reply
    printed as JSON (bytes as base64, 64-bit integers as strings, as the proto3 mapping says)."""
    request = json_format.Parse(request_json, request_type())
    reply_type = {
        "GetSchedule": pb.GetScheduleResponse,
        "SampleInitLatents": pb.SampleInitLatentsResponse,
    }[method]
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            NOISE + method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=reply_type.FromString,
        )
        reply = call(request, timeout=30)
    return json.loads(json_format.MessageToJson(reply))


def rpc_error(target: str, method: str, request: object) -> grpc.RpcError:
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            NOISE + method, request_serializer=lambda m: m.SerializeToString()
        )
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=30)
    return info.value


def test_negative_seeds_and_numbers_in_json(target):
    reply = call_json(
        target,
        "SampleInitLatents",
        '{"shape": [2, 4, 3, 3], "signed_seeds": [-1, 42], "tensor_values": true, '
        '"scheduler": "EulerDiscreteScheduler", "num_inference_steps": 10}',
        pb.SampleInitLatentsRequest,
    )
    # The proto3 JSON mapping writes 64-bit integers as strings; seeds echo as uint64.
    assert reply["seeds"] == [str(2**64 - 1), "42"]
    latents = reply["latents"]
    assert latents["shape"] == ["2", "4", "3", "3"]
    expected = torch.cat(
        [torch.randn((1, 4, 3, 3), generator=torch.Generator().manual_seed(s)) for s in (-1, 42)]
    )
    euler = EulerDiscreteScheduler.from_config(SD15_SCHEDULER_CONFIG)
    euler.set_timesteps(10)
    expected = expected * euler.init_noise_sigma
    assert latents["values"] == expected.reshape(-1).tolist()
    # The bytes are there too, and say the same.
    data = np.frombuffer(__import__("base64").b64decode(latents["data"]), dtype="<f4")
    assert data.tolist() == latents["values"]


def test_values_of_every_dtype(target):
    for dtype, torch_dtype in (
        ("DATA_TYPE_FP16", torch.float16),
        ("DATA_TYPE_BF16", torch.bfloat16),
        ("DATA_TYPE_FP64", torch.float64),
    ):
        reply = call_json(
            target,
            "SampleInitLatents",
            json.dumps(
                {
                    "shape": [1, 4, 2, 2],
                    "signed_seeds": [-5],
                    "dtype": dtype,
                    "sigma": 1.0,
                    "tensor_values": True,
                }
            ),
            pb.SampleInitLatentsRequest,
        )
        expected = torch.randn(
            (1, 4, 2, 2), generator=torch.Generator().manual_seed(-5), dtype=torch_dtype
        )
        assert reply["latents"]["values"] == expected.double().reshape(-1).tolist(), dtype


def test_schedule_numbers_in_json(target):
    reply = call_json(
        target,
        "GetSchedule",
        '{"scheduler": "EulerDiscreteScheduler", "num_inference_steps": 12, "preset": "sd15", '
        '"tensor_values": true}',
        pb.GetScheduleRequest,
    )
    local = sigmaserve.get_schedule("EulerDiscreteScheduler", 12, preset="sd15")
    # Field names print in lowerCamelCase, as grpcurl prints them.
    for name, key in (
        ("timesteps", "timesteps"),
        ("sigmas", "sigmas"),
        ("betas", "betas"),
        ("alphas_cumprod", "alphasCumprod"),
    ):
        assert reply[key]["values"] == np.asarray(getattr(local, name), np.float64).tolist()
    euler = EulerDiscreteScheduler.from_config(SD15_SCHEDULER_CONFIG)
    euler.set_timesteps(12)
    assert reply["sigmas"]["values"] == pytest.approx(euler.sigmas.tolist(), rel=2e-7)
    assert reply["timesteps"]["values"] == euler.timesteps.tolist()
    # Without the flag the reply is what it always was: bytes only.
    plain = call_json(
        target,
        "GetSchedule",
        '{"scheduler": "EulerDiscreteScheduler", "num_inference_steps": 12}',
        pb.GetScheduleRequest,
    )
    assert "values" not in plain["sigmas"] and plain["sigmas"]["data"] == reply["sigmas"]["data"]


def test_values_do_not_change_what_clients_decode(target):
    request = pb.SampleInitLatentsRequest(shape=[1, 4, 4, 4], seeds=[7], tensor_values=True)
    with grpc.insecure_channel(target) as channel:
        stub = channel.unary_unary(
            NOISE + "SampleInitLatents",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.SampleInitLatentsResponse.FromString,
        )
        with_values = stub(request, timeout=30)
        request.tensor_values = False
        without = stub(request, timeout=30)
    assert len(with_values.latents.values) == 64 and not without.latents.values
    a = wire.latents_from_reply(with_values, (7,))
    b = wire.latents_from_reply(without, (7,))
    assert a.array.tobytes() == b.array.tobytes()
    assert list(with_values.latents.values) == b.array.astype(np.float64).reshape(-1).tolist()


def test_wire_mistakes_name_their_field(target):
    both = pb.SampleInitLatentsRequest(shape=[1, 4, 2, 2], seeds=[1], signed_seeds=[-1])
    err = rpc_error(target, "SampleInitLatents", both)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("signed_seeds:") and "not both" in err.details()
    side = int(np.sqrt(MAX_TENSOR_VALUES / 4)) + 1
    big = pb.SampleInitLatentsRequest(shape=[1, 4, side, side], seeds=[1], tensor_values=True)
    err = rpc_error(target, "SampleInitLatents", big)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("tensor_values:") and str(MAX_TENSOR_VALUES) in err.details()
    long = pb.GetScheduleRequest(
        scheduler="EulerDiscreteScheduler",
        num_inference_steps=MAX_TENSOR_VALUES,
        tensor_values=True,
    )
    err = rpc_error(target, "GetSchedule", long)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("tensor_values:")
    stream = pb.SampleInitLatentsRequest(shape=[1, 4, 2, 2], seeds=[1], tensor_values=True)
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_stream(
            NOISE + "StreamInitLatents", request_serializer=lambda m: m.SerializeToString()
        )
        with pytest.raises(grpc.RpcError) as info:
            list(call(stream, timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("tensor_values:")


def test_wire_fields_are_not_library_arguments(client):
    """The Python client sends the library's arguments only: a wire field passed as an argument
    is refused as the local call refuses it."""
    for name in ("tensor_values", "signed_seeds"):
        with pytest.raises(sigmaserve.InvalidArgumentError) as local:
            sigmaserve.get_schedule("EulerDiscreteScheduler", 5, **{name: True})
        with pytest.raises(sigmaserve.InvalidArgumentError) as remote:
            client.get_schedule("EulerDiscreteScheduler", 5, **{name: True})
        assert str(remote.value) == str(local.value)
    negative = client.sample_init_latents(shape=(1, 4, 2, 2), seeds=[-3])
    assert (
        negative.array.tobytes()
        == sigmaserve.sample_init_latents(shape=(1, 4, 2, 2), seeds=[-3]).array.tobytes()
    )


async def _async_info(target: str) -> sigmaserve.ServerInfo:
    async with sigmaserve.AsyncClient(target) as client:
        return await client.server_info()


def test_server_info_is_a_typed_value(client, target, server):
    import asyncio

    info = client.server_info()
    assert isinstance(info, sigmaserve.ServerInfo)
    assert info == asyncio.run(_async_info(target))
    assert dataclasses.asdict(info) == {
        "version": sigmaserve.__version__,
        "max_elements": server.config.max_elements,
        "max_unary_reply_bytes": server.config.max_unary_reply_bytes,
        "stream_chunk_bytes": server.config.stream_chunk_bytes,
        "max_concurrent_rpcs": server.config.max_concurrent_rpcs,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.version = "x"  # type: ignore[misc]


def test_metrics_count_every_reply_byte():
    pytest.importorskip("prometheus_client")  # the metrics extra
    with server_in_thread(ServerConfig(port=0, metrics_port=-1)) as running:
        with sigmaserve.Client(f"127.0.0.1:{running.port}") as c:
            for steps in (5, 40):
                c.get_schedule("EulerDiscreteScheduler", steps)
            c.server_info()
        url = f"http://127.0.0.1:{running.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
    sent = {
        line.split('grpc_method="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("sigmaserve_reply_bytes_total{")
    }
    schedules = sum(
        len(
            wire.schedule_to_proto(
                sigmaserve.get_schedule("EulerDiscreteScheduler", steps)
            ).SerializeToString()
        )
        for steps in (5, 40)
    )
    assert sent["GetSchedule"] == schedules
    info = pb.GetServerInfoResponse(
        version=sigmaserve.__version__,
        max_elements=ServerConfig().max_elements,
        max_unary_reply_bytes=ServerConfig().max_unary_reply_bytes,
        stream_chunk_bytes=ServerConfig().stream_chunk_bytes,
        max_concurrent_rpcs=ServerConfig().max_concurrent_rpcs,
    )
    assert sent["GetServerInfo"] == info.ByteSize()
