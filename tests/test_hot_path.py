"""The Rust-filled replies: byte-identical to the reference path (numpy array, scale_noise,
one join-copy), for every dtype, seed mode, source, scale factor and payload alignment; and the
chunked one-draw stream of seed_mode="batch" equal to the unary payload."""

from __future__ import annotations

import numpy as np
import pytest
from sigmaserve import _core, latents, noise, wire
from sigmaserve.server import ServerConfig
from sigmaserve.server.servicer import NoiseServicer, SigmaCache
from sigmaserve.v1 import noise_service_pb2 as pb

DTYPES = ["float32", "float64", "float16", "bfloat16"]


def reference(prefix, factor, shape, seeds, seed_mode, dtype, source="cpu", **options):
    array = noise.sample_noise(
        shape, seeds, seed_mode=seed_mode, dtype=dtype, source=source, **options
    )
    return prefix + np.ascontiguousarray(latents.scale_noise(array, dtype, factor)).tobytes()


CASES = [
    ((1, 4, 8, 8), [5], "per_item"),
    ((3, 5), [1, 2, 3], "per_item"),
    ((2, 37), [9], "batch"),
    ((1, 7), [2**64 - 1], "batch"),
    ((2, 2, 3, 3), [4], "a1111"),
    ((2, 4, 64, 64), [7, -3], "per_item"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factor", [1.0, 14.614642, 0.5, 1e30])
def test_reply_matches_reference_at_every_alignment(dtype, factor):
    for shape, seeds, mode in CASES:
        want = reference(b"", factor, shape, seeds, mode, dtype)
        for plen in range(17):  # every misalignment of the payload for every itemsize
            prefix = bytes(range(plen))
            for strategy in ("inplace", "new_with", "vec"):
                got = _core.wire_latents_reply(
                    prefix, factor, list(shape), seeds, seed_mode=mode, dtype=dtype,
                    strategy=strategy,
                )  # fmt: skip
                assert got == prefix + want, (shape, mode, plen, strategy)


@pytest.mark.parametrize("source", ["cpu", "cuda", "a1111_nv"])
@pytest.mark.parametrize("plen", [0, 1, 3, 21])
def test_large_reply_all_sources(source, plen):
    shape, seeds = (4, 4, 256, 256), [1, 2, 3, 4]  # 4 MiB: parallel core, detached fill
    got = _core.wire_latents_reply(b"x" * plen, 3.5, list(shape), seeds, source=source)
    assert got == reference(b"x" * plen, 3.5, shape, seeds, "per_item", "float32", source)


def test_reply_refuses_before_allocating():
    from sigmaserve.errors import InvalidArgumentError, TooLargeError

    with pytest.raises(TooLargeError):
        _core.wire_latents_reply(b"", 1.0, [1 << 20, 1 << 20], [1], max_elements=1000)
    with pytest.raises(InvalidArgumentError):
        _core.wire_latents_reply(b"", 1.0, [2, 4], [1], seed_mode="per_item")
    with pytest.raises(ValueError):
        _core.wire_latents_reply(b"", 1.0, [2, 4], [1, 2], strategy="nope")


@pytest.mark.parametrize("dtype,itemsize", [("float32", 4), ("float64", 8), ("float16", 2),
                                            ("bfloat16", 2)])  # fmt: skip
def test_batch_stream_equals_one_draw(dtype, itemsize):
    for numel in (1, 15, 16, 17, 33, 1000, 4099, 70001):
        for factor in (1.0, 7.25):
            whole = _core.wire_latents_reply(
                b"", factor, [1, numel], [123], seed_mode="batch", dtype=dtype
            )
            for step in (1, 3, 8, 40, 1000, 1 << 20):
                if numel * itemsize // step > 2000:
                    continue
                stream = _core.BatchStream(123, numel, dtype, factor)
                parts = []
                while (message := stream.next_chunk(step)) is not None:
                    data = pb.LatentsChunk.FromString(message).data
                    assert 0 < len(data) <= step
                    parts.append(data)
                assert b"".join(parts) == whole, (numel, factor, step)
                assert stream.offset == stream.total_bytes == numel * itemsize


def test_batch_stream_large_chunks_cross_the_parallel_threshold():
    numel = 3 * (1 << 18) + 5  # chunks of 1 MiB (parallel fill) and a tail block
    for kernel in (None, "default"):
        whole = reference(b"", 2.0, (numel,), [77], "batch", "float32", cpu_kernel=kernel)
        stream = _core.BatchStream(77, numel, "float32", 2.0, kernel)
        parts = []
        while (message := stream.next_chunk(1 << 20)) is not None:
            parts.append(pb.LatentsChunk.FromString(message).data)
        assert b"".join(parts) == whole


@pytest.mark.parametrize(
    ("source", "gpu"), [("cuda", None), ("cuda", "1x512"), ("cuda", "t4"), ("a1111_nv", None)]
)
@pytest.mark.parametrize("dtype,itemsize", [("float32", 4), ("float64", 8), ("bfloat16", 2)])
def test_counter_source_streams_equal_one_draw(source, gpu, dtype, itemsize):
    """CUDA and NV batch draws stream range by range, byte-identical to the unary payload."""
    options = {"gpu": gpu} if gpu else {}
    for numel in (1, 17, 5000, 70001):
        whole = _core.wire_latents_reply(
            b"", 3.5, [1, numel], [9], seed_mode="batch", dtype=dtype, source=source, **options
        )
        for step in (3, 1000, 1 << 16):
            if numel * itemsize // step > 2000:
                continue
            stream = _core.BatchStream(9, numel, dtype, 3.5, source=source, gpu=gpu)
            parts = []
            while (message := stream.next_chunk(step)) is not None:
                parts.append(pb.LatentsChunk.FromString(message).data)
            assert b"".join(parts) == whole, (numel, step)


REQUESTS = [
    {"shape": [1, 4, 64, 64], "seeds": [42]},
    {
        "width": 512,
        "height": 512,
        "batch_size": 2,
        "seeds": [1, 2],
        "scheduler": "EulerDiscreteScheduler",
    },
    {"shape": [2, 4, 8, 8], "seeds": [5], "seed_mode": "batch", "dtype": "bfloat16", "sigma": 3},
    {"shape": [3, 4, 8, 8], "seeds": [5], "seed_mode": "a1111", "dtype": "float16"},
    {"shape": [2, 4, 8, 8], "seeds": [1, 2], "source": "cuda", "noise_options": {"gpu": "t4"}},
    {"shape": [2, 4, 8, 8], "seeds": [1, 2], "noise_options": {"cpu_kernel": "default"}},
    {"shape": [2, 4, 8, 8], "seeds": [1, 2], "return_generator_states": True},
    {"shape": [2, 4, 8, 8], "seeds": [3], "seed_mode": "batch", "return_generator_states": True},
    {
        "shape": [2, 4, 8, 8],
        "seeds": [1],
        "noise_options": {"subseeds": [3], "subseed_strength": 0.5},
        "seed_mode": "a1111",
    },  # variation seeds: the reference path
]


@pytest.mark.parametrize("fields", REQUESTS)
def test_servicer_fast_path_equals_reference(fields):
    servicer = NoiseServicer(ServerConfig())
    request = wire.latents_request(**fields)
    kwargs = wire.latents_kwargs(request)
    want = servicer._reference_latents(kwargs)
    assert servicer._unary_latents(request) == want
    assert servicer._unary_latents(request) == want  # the cached schedule gives the same bytes
    parsed = pb.SampleInitLatentsResponse.FromString(want)
    local = latents.sample_init_latents(**kwargs)
    assert parsed.latents.data == np.ascontiguousarray(local.array).tobytes()


def test_sigma_cache_equals_resolve_sigma():
    cache = SigmaCache(size=2)
    for scheduler, steps in [
        ("EulerDiscreteScheduler", 30),
        ("DDIMScheduler", None),
        ("EulerDiscreteScheduler", 30),
        ("LMSDiscreteScheduler", 20),
    ] * 2:
        request = wire.latents_request(
            shape=[1, 4, 8, 8], seeds=[1], scheduler=scheduler, num_inference_steps=steps
        )
        kwargs = wire.latents_kwargs(request)
        want = latents.resolve_sigma(None, scheduler, steps, "sd15", {})
        assert cache.resolve(kwargs) == want
    assert len(cache._values) <= 2


@pytest.mark.parametrize("sigma", [0.0, -0.0, 1.0, 14.614642, float("nan"), 1e300])
@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_encoded_prefix_equals_protobuf(sigma, dtype):
    for seeds, shape, states in [
        ([0], [1], ()),
        ([1, 2**64 - 1, 300], [2, 4, 64, 64], ()),
        ([5, 6], [2, 3], (b"s" * 5056, b"")),
        ([127, 128, 16383, 16384], [1, 16, 128, 128], (b"\x00" * 16,)),
    ]:
        nbytes = int(np.prod(shape)) * (2 if dtype in ("float16", "bfloat16") else 4)
        got = wire.latents_reply_prefix(sigma, seeds, dtype, shape, nbytes, states)
        want = wire._latents_reply_prefix_protobuf(sigma, seeds, dtype, shape, nbytes, states)
        assert got == want
        message = pb.SampleInitLatentsResponse(
            init_noise_sigma=sigma,
            seeds=seeds,
            generator_states=list(states),
            latents=pb.Tensor(
                dtype=wire.tensors.dtype_to_enum(dtype), shape=shape, data=b"\x01" * nbytes
            ),
        )
        assert pb.SampleInitLatentsResponse.FromString(got + b"\x01" * nbytes) == message


class _Context:
    """Enough of a ServicerContext for SampleInitLatents called in-process."""

    def time_remaining(self):
        return None

    async def abort_with_status(self, status):
        raise AssertionError(status.details)


PLAN_REQUESTS = [
    {"shape": [1, 4, 64, 64]},
    {"shape": [1, 4, 8, 8], "scheduler": "EulerDiscreteScheduler", "num_inference_steps": 30},
    {"shape": [1, 4, 8, 8], "sigma": 14.6},
    {"shape": [1, 4, 8, 8], "sigma": 0.0},
    {"shape": [1, 4, 8, 8], "sigma": -0.0},
    {"shape": [2, 4, 8, 8], "seed_mode": "batch", "dtype": "float16"},
    {"shape": [2, 4, 8, 8], "source": "cuda", "noise_options": {"gpu": "t4"}},
    {"width": 64, "height": 64, "batch_size": 2, "preset": "sdxl", "seed_mode": "batch"},
    {"shape": [2, 4, 8, 8], "scheduler": "EulerDiscreteScheduler", "timestep_spacing": "leading"},
]


@pytest.mark.parametrize("fields", PLAN_REQUESTS)
def test_cached_reply_plans_equal_reference(fields):
    """Repeated requests that differ only in their seeds take a prepared plan: same bytes."""
    import asyncio

    servicer = NoiseServicer(ServerConfig())
    batch = 2 if fields.get("shape", [1])[0] == 2 or fields.get("batch_size") == 2 else 1
    seed_lists = [
        [7] * batch,
        [2**64 - 1] * batch,
        [127, 128][:batch],
        [0] * batch,
        [300, 5][:batch],
    ]
    if fields.get("seed_mode") == "batch":
        seed_lists = [[7], [2**64 - 1], [127], [128], [0]]

    async def calls():
        for seeds in seed_lists:
            request = wire.latents_request(**fields, seeds=seeds)
            want = servicer._reference_latents(wire.latents_kwargs(request))
            got = await servicer.SampleInitLatents(request, _Context())
            assert got == want, seeds

    asyncio.run(calls())
    positive = fields.get("sigma", 1.0) > 0
    assert len(servicer._plans) == (1 if positive else 0)


def test_cached_plan_still_refuses_empty_seeds():
    import asyncio

    from sigmaserve.errors import InvalidArgumentError

    servicer = NoiseServicer(ServerConfig())
    servicer._unary_latents(wire.latents_request(shape=[1, 4, 8, 8], seeds=[1]))
    assert len(servicer._plans) == 1
    request = pb.SampleInitLatentsRequest(shape=[1, 4, 8, 8])
    with pytest.raises(InvalidArgumentError, match="at least one seed"):
        servicer._unary_latents(request)

    class Refusing(_Context):
        async def abort_with_status(self, status):
            raise RuntimeError(status.details)

    with pytest.raises(RuntimeError, match="at least one seed"):
        asyncio.run(servicer.SampleInitLatents(request, Refusing()))
    # a seed count the core refuses: the same message with and without the plan
    request = wire.latents_request(shape=[1, 4, 8, 8], seeds=[1, 2])
    with pytest.raises(RuntimeError) as fresh:
        asyncio.run(NoiseServicer(ServerConfig()).SampleInitLatents(request, Refusing()))
    with pytest.raises(RuntimeError) as planned:
        asyncio.run(servicer.SampleInitLatents(request, Refusing()))
    assert "one seed per batch item" in str(fresh.value)
    assert str(planned.value) == str(fresh.value)
