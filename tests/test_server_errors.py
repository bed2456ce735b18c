"""Bad requests get INVALID_ARGUMENT naming the field (or RESOURCE_EXHAUSTED), never a crash."""

from __future__ import annotations

import math

import grpc
import pytest
import sigmaserve
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sigmaserve.errors import InvalidArgumentError, TooLargeError
from sigmaserve.v1 import noise_service_pb2 as pb
from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def stub(target):
    with grpc.insecure_channel(target) as channel:
        yield pb_grpc.NoiseServiceStub(channel)


def call_error(method, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        method(request, timeout=30)
    return info.value


def violated_field(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)
    assert status is not None, "rich error details expected"
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return bad.field_violations[0].field


SCHEDULE_CASES = [
    ({"scheduler": "NoSuchScheduler", "num_inference_steps": 10}, "scheduler"),
    ({"scheduler": "EulerDiscreteScheduler", "num_inference_steps": 0}, "num_inference_steps"),
    ({"scheduler": "EulerDiscreteScheduler", "num_inference_steps": -3}, "num_inference_steps"),
]


@pytest.mark.parametrize(("fields", "field"), SCHEDULE_CASES)
def test_schedule_invalid_argument(stub, fields, field):
    err = call_error(stub.GetSchedule, pb.GetScheduleRequest(**fields))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_field(err) == field
    assert field in err.details()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"beta_start": 0.02, "beta_end": 0.01}, "beta_start"),
        ({"beta_start": math.nan}, "beta_start"),
        ({"beta_end": math.inf}, "beta_end"),
        ({"beta_schedule": "cubic"}, "beta_schedule"),
        ({"timestep_spacing": "sideways"}, "timestep_spacing"),
    ],
)
def test_schedule_bad_config_through_client(client, overrides, field):
    with pytest.raises(InvalidArgumentError) as info:
        client.get_schedule("EulerDiscreteScheduler", 10, **overrides)
    assert info.value.field == field
    with pytest.raises(InvalidArgumentError) as local:
        sigmaserve.get_schedule("EulerDiscreteScheduler", 10, **overrides)
    assert local.value.field == field


def test_too_many_steps_where_diffusers_refuses(client):
    with pytest.raises(InvalidArgumentError) as info:
        client.get_schedule("DDIMScheduler", 1001)
    assert info.value.field == "num_inference_steps"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"shape": [1, 4, 0, 8], "seeds": [1]}, "shape"),
        ({"shape": [1, -4, 8, 8], "seeds": [1]}, "shape"),
        ({"width": 512, "height": -8, "seeds": [1]}, "height"),
        ({"width": 500, "height": 512, "seeds": [1]}, "width"),
        ({"shape": [1, 4, 8, 8]}, "seeds"),
        ({"shape": [2, 4, 8, 8], "seeds": [1]}, "seeds"),
        ({"shape": [1, 4, 8, 8], "seeds": [1], "sigma": math.nan}, "sigma"),
        ({"shape": [1, 4, 8, 8], "seeds": [1], "sigma": -1.0}, "sigma"),
        ({"shape": [1, 4, 8, 8], "seeds": [1], "scheduler": "Nope"}, "scheduler"),
        ({"shape": [1, 4, 8, 8], "seeds": [1], "dtype": pb.DATA_TYPE_INT64}, "dtype"),
        ({"shape": [1, 4, 8, 8], "seeds": [1], "dtype": 99}, "dtype"),
    ],
)
def test_latents_invalid_argument(stub, fields, field):
    err = call_error(stub.SampleInitLatents, pb.SampleInitLatentsRequest(**fields))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert violated_field(err) == field


def test_tensor_over_the_element_limit_is_refused_before_allocation(stub, server):
    huge = [1 << 20, 1 << 20, 1 << 20, 1 << 20]  # 2**80 elements: must not be attempted
    for method in (stub.SampleInitLatents, stub.StreamInitLatents):
        request = pb.SampleInitLatentsRequest(shape=huge, seeds=[1])
        with pytest.raises(grpc.RpcError) as info:
            result = method(request, timeout=30)
            list(result) if method is stub.StreamInitLatents else None
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_unary_reply_over_limit_points_to_streaming(stub, client):
    request = pb.SampleInitLatentsRequest(shape=[4, 4, 512, 512], seeds=[1, 2, 3, 4])
    err = call_error(stub.SampleInitLatents, request)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "StreamInitLatents" in err.details()
    with pytest.raises(TooLargeError):
        client.stream_init_latents(shape=[1 << 12, 1 << 12, 1 << 12], seeds=[1])


def test_server_survives_bad_requests(client):
    assert client.get_schedule("EulerDiscreteScheduler", 10).timesteps.shape == (10,)
