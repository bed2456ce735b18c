"""Hypothesis-generated requests: never UNKNOWN or INTERNAL, and the server stays up."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigmaserve.v1 import noise_service_pb2 as pb
from sigmaserve.v1 import noise_service_pb2_grpc as pb_grpc

FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
SEEN = {"calls": 0}

dims = st.one_of(st.integers(-3, 9), st.sampled_from([0, 1 << 20, 1 << 40, -(1 << 62)]))
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-(10**6), 10**6),
        st.text(max_size=8),
    ),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=5,
)
keys = st.sampled_from(
    [
        "beta_start",
        "beta_end",
        "beta_schedule",
        "timestep_spacing",
        "use_karras_sigmas",
        "shift",
        "timesteps",
        "sigmas",
        "steps_offset",
        "prediction_type",
        "bogus",
        "cpu_kernel",
        "subseeds",
        "subseed_strength",
        "batch_index",
        "num_train_timesteps",
        "rescale_betas_zero_snr",
    ]
)
structs = st.dictionaries(keys, json_values, max_size=3).map(
    lambda d: struct_pb2.Struct(fields={k: _value(v) for k, v in d.items()})
)


def _value(v):
    value = struct_pb2.Value()
    if v is None:
        value.null_value = 0
    elif isinstance(v, bool):
        value.bool_value = v
    elif isinstance(v, (int, float)):
        value.number_value = float(v)
    elif isinstance(v, str):
        value.string_value = v
    else:
        value.list_value.values.extend(_value(x) for x in v)
    return value


schedulers = st.sampled_from(
    [
        "",
        "EulerDiscreteScheduler",
        "DDIMScheduler",
        "LMSDiscreteScheduler",
        "Nope",
        "comfyui:karras",
        "a1111:nothing",
        "ays:sdxl",
        ":",
        "comfyui:",
    ]
)
presets = st.one_of(st.none(), st.sampled_from(["", "sd15", "sdxl", "flux-dev", "bogus"]))

latents_requests = st.builds(
    lambda shape, w, h, b, preset, seeds, mode, source, dtype, sigma, sched, steps, so, no: (
        _latents(shape, w, h, b, preset, seeds, mode, source, dtype, sigma, sched, steps, so, no)
    ),
    st.lists(dims, max_size=5),
    st.integers(-16, 600),
    st.integers(-16, 600),
    st.integers(-2, 4),
    presets,
    st.lists(st.integers(0, 2**64 - 1), max_size=5),
    st.integers(0, 5),
    st.integers(0, 5),
    st.integers(0, 7),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    schedulers,
    st.one_of(st.none(), st.integers(-5, 1200)),
    structs,
    structs,
)


def _latents(shape, w, h, b, preset, seeds, mode, source, dtype, sigma, sched, steps, so, no):
    request = pb.SampleInitLatentsRequest(
        shape=shape,
        width=w,
        height=h,
        batch_size=b,
        seeds=seeds,
        seed_mode=mode,
        source=source,
        dtype=dtype,
        scheduler=sched,
        scheduler_overrides=so,
        noise_options=no,
    )
    if preset is not None:
        request.preset = preset
    if sigma is not None:
        request.sigma = sigma
    if steps is not None:
        request.num_inference_steps = steps
    return request


schedule_requests = st.builds(
    lambda sched, steps, preset, config, overrides: _schedule(
        sched, steps, preset, config, overrides
    ),
    schedulers,
    st.one_of(st.none(), st.integers(-5, 1200)),
    presets,
    structs,
    structs,
)


def _schedule(sched, steps, preset, config, overrides):
    request = pb.GetScheduleRequest(scheduler=sched, config=config, overrides=overrides)
    if steps is not None:
        request.num_inference_steps = steps
    if preset is not None:
        request.preset = preset
    return request


@pytest.fixture(scope="module")
def stub(target):
    with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", -1)]) as ch:
        yield pb_grpc.NoiseServiceStub(ch)


def _check(call):
    SEEN["calls"] += 1
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "SerializeToString"):
            list(result)
    except grpc.RpcError as err:
        assert err.code() not in FORBIDDEN, (err.code(), err.details())
        assert err.code() in ALLOWED, (err.code(), err.details())


FUZZ = settings(
    max_examples=220,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(request=latents_requests)
def test_fuzz_sample_init_latents(stub, request):
    _check(lambda: stub.SampleInitLatents(request, timeout=60))


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(request=latents_requests)
def test_fuzz_stream_init_latents(stub, request):
    _check(lambda: stub.StreamInitLatents(request, timeout=60))


@FUZZ
@given(request=schedule_requests)
def test_fuzz_get_schedule(stub, request):
    _check(lambda: stub.GetSchedule(request, timeout=60))


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=64))
def test_fuzz_raw_bytes(target, data):
    with grpc.insecure_channel(target) as channel:
        for method in ("SampleInitLatents", "GetSchedule"):
            raw = channel.unary_unary(f"/sigmaserve.v1.NoiseService/{method}")
            _check(lambda raw=raw: raw(data, timeout=30))


def test_fuzz_covered_enough_requests_and_server_alive(client):
    # Runs after the property tests in file order: at least 500 requests were answered.
    assert SEEN["calls"] >= 500
    assert client.get_schedule("EulerDiscreteScheduler", 10).timesteps.shape == (10,)
