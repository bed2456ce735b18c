"""The replies the core writes in place: the unary reply and the stream messages parse as the
declared messages and carry exactly the local call's latents, for every dtype, seed mode,
source, seed feature, scale factor and payload alignment; the service layer's plans give the
same bytes as fresh requests."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest
import sigmaserve
from sigmaserve import tensors, wire
from sigmaserve.errors import InvalidArgumentError, TooLargeError
from sigmaserve.latents import latents_request
from sigmaserve.server import ServerConfig, protocol
from sigmaserve.server.service import LatentsService
from sigmaserve.server.servicer import NoiseServicer
from sigmaserve.v1 import noise_service_pb2 as pb

DTYPES = ["float32", "float64", "float16", "bfloat16"]

CASES = [
    {"shape": (1, 4, 8, 8), "seeds": [5]},
    {"shape": (3, 5), "seeds": [1, 2, 3]},
    {"shape": (2, 37), "seeds": [9], "seed_mode": "batch"},
    {"shape": (1, 7), "seeds": [2**64 - 1], "seed_mode": "batch"},
    {"shape": (2, 2, 3, 3), "seeds": [4], "seed_mode": "a1111"},
    {"shape": (2, 4, 64, 64), "seeds": [7, -3]},
    {"shape": (3, 4, 6, 7), "seeds": [8], "seed_mode": "batch",
     "noise_options": {"batch_index": [2, 0, 2]}},
    {"shape": (2, 4, 6, 7), "seeds": [8], "seed_mode": "a1111",
     "noise_options": {"subseeds": 3, "subseed_strength": 0.25}},
    {"shape": (2, 4, 6, 7), "seeds": [8, 9],
     "noise_options": {"seed_resize_from": [5, 9]}},
    {"shape": (2, 4, 6, 7), "seeds": [8], "seed_mode": "batch",
     "noise_options": {"subseeds": [1], "subseed_strength": 0.6}},
]  # fmt: skip


def local_bytes(case, **extra):
    return np.ascontiguousarray(
        sigmaserve.sample_init_latents(preset=None, **case, **extra).array
    ).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sigma", [1.0, 14.614642, 0.5, 1e30])
def test_reply_payload_matches_the_local_array_at_every_alignment(dtype, sigma):
    for case in CASES:
        want = local_bytes(case, dtype=dtype, sigma=sigma)
        request = latents_request(preset=None, dtype=dtype, sigma=sigma, **case)
        for plen in range(17):  # every misalignment of the payload for every itemsize
            prefix = bytes(range(plen))
            assert request.reply(prefix) == prefix + want, (case, plen)


@pytest.mark.parametrize("source", ["cpu", "cuda", "a1111_nv"])
@pytest.mark.parametrize("plen", [0, 1, 3, 21])
def test_large_reply_all_sources(source, plen):
    case = {"shape": (4, 4, 256, 256), "seeds": [1, 2, 3, 4], "source": source, "sigma": 3.5}
    request = latents_request(preset=None, **case)  # 4 MiB: parallel core, detached fill
    assert request.reply(b"x" * plen) == b"x" * plen + local_bytes(case)


def test_reply_refuses_before_allocating():
    with pytest.raises(TooLargeError):
        latents_request(shape=[1 << 20, 1 << 20], seeds=[1], max_elements=1000)
    with pytest.raises(InvalidArgumentError, match="one seed per batch item"):
        latents_request(shape=[2, 4], seeds=[1])
    request = latents_request(shape=[4, 1 << 20], seeds=[1, 2, 3, 4])
    with pytest.raises(TooLargeError, match="StreamInitLatents"):
        request.check_size(1 << 30, 1 << 20)


def streamed(request, step):
    stream = request.stream(step, protocol.CHUNK_DATA_KEY)
    parts = []
    while (message := stream.next_message()) is not None:
        data = pb.LatentsChunk.FromString(message).data
        assert 0 < len(data) <= step
        parts.append(data)
    assert stream.remaining_bytes == 0
    return b"".join(parts)


@pytest.mark.parametrize("dtype", DTYPES)
def test_stream_equals_the_payload_in_every_mode(dtype):
    for case in CASES:
        request = latents_request(preset=None, dtype=dtype, sigma=7.25, **case)
        whole = request.reply(b"")
        for step in (1, 3, 8, 40, 1000, 1 << 20):
            if len(whole) // step > 3000:
                continue
            assert streamed(request, step) == whole, (case, step)


@pytest.mark.parametrize(
    ("source", "gpu"), [("cuda", None), ("cuda", "1x512"), ("cuda", "t4"), ("a1111_nv", None)]
)
def test_counter_source_streams_equal_one_draw(source, gpu):
    options = {"gpu": gpu} if gpu else {}
    for numel in (1, 17, 5000, 70001):
        request = latents_request(
            shape=[1, numel], seeds=[9], seed_mode="batch", source=source, sigma=3.5,
            noise_options=options, preset=None,
        )  # fmt: skip
        whole = request.reply(b"")
        for step in (3, 1000, 1 << 16):
            if len(whole) // step > 2000:
                continue
            assert streamed(request, step) == whole, (numel, step)


def test_large_stream_crosses_the_parallel_threshold():
    numel = 3 * (1 << 18) + 5  # chunks of 1 MiB (parallel fill) and a tail block
    for kernel in ({}, {"cpu_kernel": "default"}):
        request = latents_request(
            shape=[1, numel], seeds=[77], seed_mode="batch", sigma=2.0, noise_options=kernel
        )
        assert streamed(request, 1 << 20) == request.reply(b"")


@pytest.mark.parametrize("sigma", [0.0, -0.0, 1.0, 14.614642, 1e300])
@pytest.mark.parametrize("dtype", DTYPES)
def test_reply_prefix_parses_as_the_declared_message(sigma, dtype):
    for seeds, shape, states in [
        ([0], [1], ()),
        ([1, 2**64 - 1, 300], [2, 4, 64, 64], ()),
        ([5, 6], [2, 3], (b"s" * 5056, b"")),
    ]:
        nbytes = int(np.prod(shape)) * tensors.storage_dtype(dtype).itemsize
        fields = SimpleNamespace(
            init_noise_sigma=sigma, wrapped_seeds=seeds, dtype=dtype, shape=shape,
            nbytes=nbytes, return_generator_states=bool(states),
            generator_states=lambda states=states: states,
        )  # fmt: skip
        prefix = protocol.latents_reply_prefix(fields)
        message = pb.SampleInitLatentsResponse(
            init_noise_sigma=sigma,
            seeds=seeds,
            generator_states=list(states),
            latents=pb.Tensor(
                dtype=tensors.dtype_to_enum(dtype), shape=shape, data=b"\x01" * nbytes
            ),
        )
        assert pb.SampleInitLatentsResponse.FromString(prefix + b"\x01" * nbytes) == message


def test_reply_field_keys_come_from_the_descriptors():
    data = b"abc"
    assert (
        protocol.CHUNK_DATA_KEY + protocol.varint(3) + data
        == pb.LatentsChunk(data=data).SerializeToString()
    )
    assert protocol.ping_reply(memoryview(data)) == pb.PingResponse(data=data).SerializeToString()


class _Context:
    """Enough of a ServicerContext for SampleInitLatents called in-process."""

    def time_remaining(self):
        return None

    def add_done_callback(self, callback):
        callback(self)


PLAN_REQUESTS = [
    {"shape": [1, 4, 64, 64]},
    {"shape": [1, 4, 8, 8], "scheduler": "EulerDiscreteScheduler", "num_inference_steps": 30},
    {"shape": [1, 4, 8, 8], "sigma": 14.6},
    {"shape": [1, 4, 8, 8], "sigma": 0.0},
    {"shape": [2, 4, 8, 8], "seed_mode": "batch", "dtype": "float16"},
    {"shape": [2, 4, 8, 8], "source": "cuda", "noise_options": {"gpu": "t4"}},
    {"width": 64, "height": 64, "batch_size": 2, "preset": "sdxl", "seed_mode": "batch"},
    {"shape": [2, 4, 8, 8], "scheduler": "EulerDiscreteScheduler", "timestep_spacing": "leading"},
    {"shape": [2, 4, 8, 8], "return_generator_states": True},
]


@pytest.mark.parametrize("fields", PLAN_REQUESTS)
def test_planned_replies_equal_fresh_requests(fields):
    """Requests that differ only in their seeds reuse one validated plan: the same bytes."""
    servicer = NoiseServicer(ServerConfig())
    batch = 2 if fields.get("shape", [1])[0] == 2 or fields.get("batch_size") == 2 else 1
    if fields.get("seed_mode") == "batch":
        batch = 1
    seed_lists = [[7] * batch, [2**64 - 1] * batch, [127, 128][:batch], [300, -5][:batch]]

    async def calls():
        for seeds in seed_lists:
            request = wire.latents_request({**fields, "seeds": seeds})
            fresh = LatentsService(ServerConfig()).unary(
                latents_request(**fields_local(fields), seeds=seeds)
            )
            got = await servicer.SampleInitLatents(request, _Context())
            assert got == fresh.data, seeds
            fresh.reservation.release()

    asyncio.run(calls())
    assert len(servicer.service._plans) == 1
    assert servicer.service.budget.in_use == 0


def fields_local(fields):
    """The local keyword arguments of wire-style fields (unknown names are overrides)."""
    names = set(pb.SampleInitLatentsRequest.DESCRIPTOR.fields_by_name)
    local = {k: v for k, v in fields.items() if k in names}
    overrides = {k: v for k, v in fields.items() if k not in names}
    return {**local, "scheduler_overrides": overrides}


def test_planned_request_still_checks_the_seeds():
    service = LatentsService(ServerConfig())
    request = wire.latents_request({"shape": [1, 4, 8, 8], "seeds": [1]})
    from sigmaserve.server.servicer import plan_key

    key = plan_key(request)
    service.latents_request(protocol.arguments(request), key)
    for seeds, message in (([], "at least one seed"), ([1, 2], "one seed per batch item")):
        with pytest.raises(InvalidArgumentError, match=message):
            service.cached_request({"seeds": seeds}, key)
