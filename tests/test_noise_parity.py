"""Bit-exact parity of sigmaserve's noise with the installed torch, computed at run time.

Every expected value here comes from torch (or from diffusers / reference formulas of A1111 and
ComfyUI evaluated with torch and numpy in this process), never from sigmaserve itself.
The random cases draw a fresh case seed per run (printed; set SIGMASERVE_PARITY_SEED to replay).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import sigmaserve  # noqa: E402
from sigmaserve import noise  # noqa: E402

DTYPES = ("float32", "float64", "float16", "bfloat16")
TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
EDGE_SEEDS = (0, 2**32 + 5, -1, 2**63 - 1, 2**64 - 1)
EDGE_SHAPES = ((1,), (15,), (16,), (17,), (31,), (33,), (4, 65, 65))

pytestmark = pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
    reason="the default CPU source reproduces torch's AVX2 kernel (x86-64 with AVX2)",
)


def torch_bits(t: torch.Tensor) -> bytes:
    """The raw bytes of a torch tensor (bfloat16 via int16)."""
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.contiguous().numpy().tobytes()


def torch_randn(shape, seed, dtype="float32", generator=None):
    g = generator if generator is not None else torch.Generator("cpu").manual_seed(seed)
    return torch.randn(tuple(shape), generator=g, dtype=TORCH_DTYPES[dtype])


def ours_bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def describe_mismatch(got: np.ndarray, want: torch.Tensor, dtype: str) -> str:
    g = noise.to_torch(got, dtype).double().reshape(-1)
    w = want.double().reshape(-1)
    bad = (g != w).nonzero().reshape(-1)
    first = bad[:5]
    return (
        f"{bad.numel()} of {w.numel()} differ; first at {first.tolist()}: "
        f"{g[first].tolist()} vs {w[first].tolist()}"
    )


def assert_same(got: np.ndarray, want: torch.Tensor, dtype: str) -> None:
    assert tuple(got.shape) == tuple(want.shape)
    if ours_bits(got) != torch_bits(want):
        pytest.fail(describe_mismatch(got, want, dtype))


def case_seed() -> int:
    env = os.environ.get("SIGMASERVE_PARITY_SEED")
    return int(env) if env else random.SystemRandom().randrange(2**32)


def random_shape(rng: random.Random) -> tuple[int, ...]:
    kind = rng.random()
    if kind < 0.25:
        return (rng.randrange(1, 40),)
    if kind < 0.5:
        return (
            rng.randrange(1, 3),
            rng.randrange(1, 9),
            rng.randrange(1, 70),
            rng.randrange(1, 70),
        )
    ndim = rng.randrange(1, 5)
    dims = [rng.randrange(1, 20) for _ in range(ndim)]
    return tuple(dims)


def random_seed(rng: random.Random) -> int:
    kind = rng.random()
    if kind < 0.3:
        return rng.randrange(2**32)
    if kind < 0.6:
        return rng.randrange(2**64)
    if kind < 0.8:
        return rng.randrange(-(2**63), 0)
    return rng.choice(EDGE_SEEDS)


def test_random_cases_bit_identical():
    seed = case_seed()
    print(f"SIGMASERVE_PARITY_SEED={seed}")
    rng = random.Random(seed)
    cases = 0
    for _ in range(240):
        shape = random_shape(rng)
        s = random_seed(rng)
        dtype = rng.choice(DTYPES)
        got = sigmaserve.randn(shape, s, dtype=dtype)
        want = torch_randn(shape, s, dtype)
        if ours_bits(got) != torch_bits(want):
            pytest.fail(
                f"case seed {seed}: shape {shape} seed {s} {dtype}: "
                f"{describe_mismatch(got, want, dtype)}"
            )
        cases += 1
    assert cases >= 200


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", EDGE_SEEDS)
def test_edge_sizes_and_seeds(dtype, seed):
    for shape in EDGE_SHAPES:
        assert_same(
            sigmaserve.randn(shape, seed, dtype=dtype), torch_randn(shape, seed, dtype), dtype
        )


def test_latent_sizes():
    for shape, seed in (
        ((1, 4, 64, 64), 42),
        ((2, 4, 128, 128), 2**32 + 5),
        ((1, 16, 128, 128), 7),
    ):
        assert_same(sigmaserve.randn(shape, seed), torch_randn(shape, seed), "float32")


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_draws_across_the_parallel_paths(dtype):
    """Above the parallel threshold: several chunks, an odd number of them, and a tail block."""
    for numel in (131_072, 5 * 65_536 + 40_000 + 5):
        assert_same(
            sigmaserve.randn((numel,), 99, dtype=dtype), torch_randn((numel,), 99, dtype), dtype
        )


def test_scalar_shape_and_empty():
    assert_same(sigmaserve.randn((), 3), torch_randn((), 3), "float32")
    assert_same(sigmaserve.randn((0, 4), 3), torch_randn((0, 4), 3), "float32")


def test_mixed_call_streams_and_state_bytes():
    seed = case_seed()
    print(f"SIGMASERVE_PARITY_SEED={seed}")
    rng = random.Random(seed ^ 0x5EED)
    for stream in range(12):
        s = random_seed(rng)
        ours = sigmaserve.Generator(s)
        theirs = torch.Generator("cpu").manual_seed(s)
        assert ours.get_state() == bytes(theirs.get_state().numpy().tobytes())
        for call in range(rng.randrange(4, 12)):
            shape = rng.choice(
                [(1,), (2,), (3,), (5,), (15,), (16,), (17,), (40,), (2, 3), (1, 4, 9, 9), (33,)]
            )
            dtype = rng.choice(DTYPES)
            got = ours.randn(shape, dtype)
            want = torch.randn(shape, generator=theirs, dtype=TORCH_DTYPES[dtype])
            assert ours_bits(got) == torch_bits(want), (
                f"stream {stream} call {call} {shape} {dtype}"
            )
            assert ours.get_state() == bytes(theirs.get_state().numpy().tobytes())


def test_cached_second_value_survives_vector_calls():
    ours = sigmaserve.Generator(11)
    theirs = torch.Generator().manual_seed(11)
    for shape in ((1,), (16,), (1,), (17,), (1,), (1,)):
        assert ours_bits(ours.randn(shape)) == torch_bits(torch.randn(shape, generator=theirs))


def test_set_state_from_torch_and_back():
    theirs = torch.Generator().manual_seed(123)
    torch.randn(7, generator=theirs)  # leaves a cached double sample
    state = theirs.get_state()
    ours = sigmaserve.Generator(0)
    ours.set_state(state)
    assert ours.seed == 123
    assert ours_bits(ours.randn((3, 7))) == torch_bits(torch.randn((3, 7), generator=theirs))
    back = ours.to_torch()
    assert torch_bits(torch.randn(50, generator=back)) == ours_bits(ours.randn(50))


def test_skip_matches_a_discarded_draw():
    for shape, dtype in (
        ((3,), "float32"),
        ((17,), "float32"),
        ((33,), "float64"),
        ((4, 5, 5), "float16"),
    ):
        a = sigmaserve.Generator(5)
        a.skip(shape, dtype)
        b = torch.Generator().manual_seed(5)
        torch.randn(shape, generator=b, dtype=TORCH_DTYPES[dtype])
        assert ours_bits(a.randn((40,))) == torch_bits(torch.randn((40,), generator=b))


def test_portable_fallback_is_identical():
    noise.set_simd_enabled(False)
    try:
        assert noise.simd_isa() == "portable"
        for shape, seed in (((1, 4, 64, 64), 42), ((33,), 9), ((4, 65, 65), 2**64 - 1)):
            for dtype in DTYPES:
                assert_same(
                    sigmaserve.randn(shape, seed, dtype=dtype),
                    torch_randn(shape, seed, dtype),
                    dtype,
                )
    finally:
        noise.set_simd_enabled(True)


DEFAULT_KERNEL_SCRIPT = textwrap.dedent(
    """
    import json, sys, hashlib, torch
    cases = json.loads(sys.argv[1])
    out = []
    for shape, seed, dtype in cases:
        g = torch.Generator().manual_seed(seed)
        t = torch.randn(tuple(shape), generator=g, dtype=getattr(torch, dtype))
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        out.append(hashlib.sha256(t.numpy().tobytes()).hexdigest())
    print(json.dumps([torch.backends.cpu.get_cpu_capability(), out]))
    """
)


def test_default_kernel_matches_torch_without_avx2():
    cases = [
        [list(shape), seed, dtype]
        for shape in ((3,), (16,), (17,), (33,), (1, 4, 64, 64))
        for seed in (0, 42, 2**32 + 5)
        for dtype in DTYPES
    ]
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    proc = subprocess.run(
        [sys.executable, "-c", DEFAULT_KERNEL_SCRIPT, json.dumps(cases)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    capability, digests = json.loads(proc.stdout.strip().splitlines()[-1])
    assert capability == "DEFAULT"
    for (shape, seed, dtype), digest in zip(cases, digests, strict=True):
        got = sigmaserve.randn(shape, seed, dtype=dtype, cpu_kernel="default")
        assert hashlib.sha256(ours_bits(got)).hexdigest() == digest, (shape, seed, dtype)


THREADS_SCRIPT = textwrap.dedent(
    """
    import hashlib, sigmaserve
    from sigmaserve import noise
    parts = []
    for source, gpu in (("cpu", None), ("cuda", None), ("cuda", "t4"), ("a1111_nv", None)):
        for dtype in ("float32", "float64", "float16", "bfloat16"):
            a = sigmaserve.randn((3, 4, 129, 127), 77, source=source, dtype=dtype, gpu=gpu)
            parts.append(hashlib.sha256(a.tobytes()).hexdigest())
    b = noise.sample_noise(
        (3, 4, 96, 96), [1, 2, 3], seed_mode="a1111", subseeds=[9], subseed_strength=0.3
    )
    parts.append(hashlib.sha256(b.tobytes()).hexdigest())
    print(",".join(parts))
    """
)


def test_results_do_not_depend_on_thread_count():
    outs = set()
    for threads in ("1", "2", "3"):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        proc = subprocess.run(
            [sys.executable, "-c", THREADS_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        outs.add(proc.stdout.strip())
    assert len(outs) == 1


# ------------------------------------------------- seed policies (vs diffusers, ComfyUI)


def test_per_item_equals_diffusers_list_of_generators():
    from diffusers.utils.torch_utils import randn_tensor

    for shape, dtype in (
        ((3, 4, 16, 16), "float32"),
        ((2, 4, 13, 13), "float16"),
        ((2, 4, 9, 7), "bfloat16"),
    ):
        seeds = [0, 2**32 + 5, -1][: shape[0]]
        gens = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        want = randn_tensor(shape, generator=gens, dtype=TORCH_DTYPES[dtype])
        got = noise.sample_noise(shape, seeds, seed_mode="per_item", dtype=dtype)
        assert_same(got, want, dtype)


def test_batch_equals_diffusers_single_generator():
    from diffusers.utils.torch_utils import randn_tensor

    for shape, dtype in (
        ((3, 4, 16, 16), "float32"),
        ((2, 4, 65, 65), "float32"),
        ((2, 3, 5), "float64"),
    ):
        want = randn_tensor(
            shape, generator=torch.Generator("cpu").manual_seed(9), dtype=TORCH_DTYPES[dtype]
        )
        got = noise.sample_noise(shape, 9, seed_mode="batch", dtype=dtype)
        assert_same(got, want, dtype)


def comfy_prepare_noise(shape, seed, batch_index, dtype=torch.float32):
    """ComfyUI comfy/sample.py prepare_noise, restated (one generator; per-index draws)."""
    g = torch.Generator().manual_seed(seed)
    if batch_index is None:
        return torch.randn(shape, dtype=dtype, generator=g)
    unique = sorted(set(batch_index))
    draws = {}
    for i in range(unique[-1] + 1):
        n = torch.randn([1, *shape[1:]], dtype=dtype, generator=g)
        if i in unique:
            draws[i] = n
    return torch.cat([draws[i] for i in batch_index], dim=0)


def test_batch_index_equals_comfyui():
    for shape, bi in (((3, 4, 8, 8), [2, 0, 2]), ((2, 4, 9, 9), [5, 1]), ((1, 4, 8, 8), [3])):
        want = comfy_prepare_noise(shape, 1234, bi)
        got = noise.sample_noise(shape, 1234, seed_mode="batch", batch_index=bi)
        assert_same(got, want, "float32")


def test_a1111_seed_plus_i():
    shape = (3, 4, 12, 10)
    want = torch.cat(
        [torch_randn((1, *shape[1:]), 2**64 - 2 + i if i < 2 else 0) for i in range(3)]
    )
    got = noise.sample_noise(shape, 2**64 - 2, seed_mode="a1111")  # seed + i wraps mod 2**64
    assert_same(got, want, "float32")
    got = noise.sample_noise(shape, [5, 6, 7], seed_mode="a1111")
    want = torch.cat([torch_randn((1, *shape[1:]), s) for s in (5, 6, 7)])
    assert_same(got, want, "float32")


def a1111_slerp(val, low, high):
    """A1111 modules/rng.py slerp, restated with torch float32 ops."""
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (
        torch.sin(val * omega) / so
    ).unsqueeze(1) * high


def a1111_first(shape_chw, seeds, subseeds, strength, resize_hw=None):
    """A1111 ImageRNG.first for the CPU source, restated."""
    c = shape_chw[0]
    noise_shape = (c, resize_hw[0], resize_hw[1]) if resize_hw else shape_chw
    xs = []
    for i, seed in enumerate(seeds):
        sub = None
        if subseeds is not None and strength != 0:
            sub = torch_randn(noise_shape, subseeds[i])
        n = torch_randn(noise_shape, seed)
        if sub is not None:
            n = a1111_slerp(strength, n, sub)
        if noise_shape != shape_chw:
            x = torch_randn(shape_chw, seed)
            dx = (shape_chw[2] - noise_shape[2]) // 2
            dy = (shape_chw[1] - noise_shape[1]) // 2
            ww = noise_shape[2] if dx >= 0 else noise_shape[2] + 2 * dx
            hh = noise_shape[1] if dy >= 0 else noise_shape[1] + 2 * dy
            tx = 0 if dx < 0 else dx
            ty = 0 if dy < 0 else dy
            dx = max(-dx, 0)
            dy = max(-dy, 0)
            x[:, ty : ty + hh, tx : tx + ww] = n[:, dy : dy + hh, dx : dx + ww]
            n = x
        xs.append(n)
    return torch.stack(xs)


def test_a1111_variation_seeds_close_to_a1111_slerp():
    shape = (2, 4, 16, 12)
    for strength in (0.1, 0.5, 0.93):
        got = noise.sample_noise(
            shape, 100, seed_mode="a1111", subseeds=7, subseed_strength=strength
        )
        # One seed with a strength: every image shares the seed; subseeds increment.
        want = a1111_first(shape[1:], [100, 100], [7, 8], strength)
        np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=2e-6)
    # strength 0: plain seed + i, bit-exact
    got = noise.sample_noise(shape, 100, seed_mode="a1111", subseeds=7, subseed_strength=0.0)
    assert_same(got, a1111_first(shape[1:], [100, 101], None, 0.0), "float32")
    # the identical-noise fallback (seed == subseed) keeps A1111's weights
    got = noise.sample_noise(
        shape, [3, 4], seed_mode="a1111", subseeds=[3, 4], subseed_strength=0.4
    )
    np.testing.assert_allclose(got, a1111_first(shape[1:], [3, 4], [3, 4], 0.4).numpy(), atol=2e-6)


def test_a1111_seed_resize_bit_exact():
    shape = (2, 4, 16, 12)
    for resize_wh in ((8, 8), (20, 10), (12, 24), (11, 9)):
        got = noise.sample_noise(shape, [42, 43], seed_mode="a1111", seed_resize_from=resize_wh)
        want = a1111_first(shape[1:], [42, 43], None, 0, resize_hw=(resize_wh[1], resize_wh[0]))
        assert_same(got, want, "float32")
    got = noise.sample_noise(
        shape,
        [42, 43],
        seed_mode="per_item",
        seed_resize_from=(8, 8),
        subseeds=[1, 2],
        subseed_strength=0.25,
    )
    want = a1111_first(shape[1:], [42, 43], [1, 2], 0.25, resize_hw=(8, 8))
    np.testing.assert_allclose(got, want.numpy(), atol=2e-6)


# ------------------------------------------------- Philox sources (vs numpy reference)

M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85


def np_philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 over uint32 numpy arrays (curand / Random123), restated."""
    c = [np.asarray(x, dtype=np.uint64) for x in (c0, c1, c2, c3)]
    k0 = np.uint64(k0)
    k1 = np.uint64(k1)
    mask = np.uint64(0xFFFFFFFF)
    for r in range(10):
        p0 = np.uint64(M0) * c[0]
        p1 = np.uint64(M1) * c[2]
        c = [
            ((p1 >> np.uint64(32)) ^ c[1] ^ k0) & mask,
            p1 & mask,
            ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & mask,
            p0 & mask,
        ]
        if r < 9:
            k0 = (k0 + np.uint64(W0)) & mask
            k1 = (k1 + np.uint64(W1)) & mask
    return [x.astype(np.uint32) for x in c]


def np_nv_randn(seed, n, offset=0):
    """A1111 modules/rng_philox.py Generator.randn, restated (float64 numpy, float32 out)."""
    seed &= 2**64 - 1
    idx = np.arange(n, dtype=np.uint32)
    x, y, _, _ = np_philox(
        np.full(n, offset, np.uint32),
        np.zeros(n, np.uint32),
        idx,
        np.zeros(n, np.uint32),
        seed & 0xFFFFFFFF,
        seed >> 32,
    )
    two_pow32_inv = np.array([2.3283064e-10], dtype=np.float32)
    two_pow32_inv_2pi = np.array([2.3283064e-10 * 6.2831855], dtype=np.float32)
    u = x * two_pow32_inv + two_pow32_inv / 2
    v = y * two_pow32_inv_2pi + two_pow32_inv_2pi / 2
    s = np.sqrt(-2.0 * np.log(u))
    return (s * np.sin(v)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 42, 2**32 + 5, -1, 2**63 - 1])
def test_a1111_nv_bit_identical_to_reference_formula(seed):
    g = sigmaserve.Generator(seed, source="a1111_nv")
    for call, n in enumerate((4 * 64 * 64, 17, 1000)):
        got = g.randn((n,))
        want = np_nv_randn(seed, n, offset=call)
        assert got.tobytes() == want.tobytes()
    assert g.offset == 3


def np_cuda_model(seed, n, offset, t, unroll=4):
    """torch CUDA randn element mapping with a float64 Box-Muller (curand_normal4 components)."""
    seed &= 2**64 - 1
    e = np.arange(n, dtype=np.int64)
    q = e // (unroll * t)
    ii = (e % (unroll * t)) // t
    idx = e % t
    ctr = offset // 4 + q
    x, y, z, w = np_philox(
        (ctr & 0xFFFFFFFF).astype(np.uint32),
        (ctr >> 32).astype(np.uint32),
        (idx & 0xFFFFFFFF).astype(np.uint32),
        (idx >> 32).astype(np.uint32),
        seed & 0xFFFFFFFF,
        seed >> 32,
    )
    f32 = np.float32
    inv = 2.0**-32

    def bm(a, b):
        u = a.astype(f32).astype(np.float64) * inv + 2.0**-33
        v = (
            b.astype(f32).astype(np.float64) * float(f32(2.3283064e-10) * f32(6.2831855))
            + float(f32(2.3283064e-10) * f32(6.2831855)) / 2
        )
        s = np.sqrt(-2.0 * np.log(u))
        return s * np.sin(v), s * np.cos(v)

    s1, c1 = bm(x, y)
    s2, c2 = bm(z, w)
    return np.choose(ii, [s1, c1, s2, c2])


@pytest.mark.parametrize(
    "gpu,t", [(None, None), ("t4", 40960), ("rtx3060", 43008), ((2, 1024), 2048)]
)
def test_cuda_source_mapping_and_offsets(gpu, t):
    g = sigmaserve.Generator(2**32 + 5, source="cuda", gpu=gpu)
    offset = 0
    for n in (16, 5000, 65536, 3 * 65536 + 17):
        tt = t if t is not None and n > t else 256 * -(-n // 256)
        got = g.randn((n,)).astype(np.float64)
        want = np_cuda_model(2**32 + 5, n, offset, tt)
        assert np.max(np.abs(got - want)) < 2e-6
        offset += 4 * ((n - 1) // (4 * tt) + 1)
        assert g.offset == offset
    # float16 / bfloat16 are the float32 values rounded; float64 uses curand_normal2_double.
    a = sigmaserve.randn((3000,), 9, source="cuda", gpu=gpu)
    h = sigmaserve.randn((3000,), 9, source="cuda", gpu=gpu, dtype="float16")
    assert h.tobytes() == a.astype(np.float16).tobytes()
    b = sigmaserve.randn((3000,), 9, source="cuda", gpu=gpu, dtype="bfloat16")
    assert b.tobytes() == torch_bits(torch.from_numpy(a).to(torch.bfloat16))
    d = sigmaserve.randn((3000,), 9, source="cuda", gpu=gpu, dtype="float64")
    assert np.max(np.abs(d - a)) > 1e-3  # a different stream layout (2 values per call)


def test_cuda_first_values_match_nv_reference_closely():
    got = sigmaserve.randn((1, 4, 64, 64), 0, source="cuda").reshape(-1)
    want = np_nv_randn(0, 4 * 64 * 64)
    assert np.max(np.abs(got - want)) < 2e-6


@pytest.mark.parametrize("source", ["cpu", "cuda", "a1111_nv"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_out_buffers_get_the_same_bits(source, dtype):
    """`out=` fills numpy arrays and CPU torch tensors in place with the fresh-array bits."""
    shape = (2, 4, 9, 9)
    want = sigmaserve.randn(shape, 77, source=source, dtype=dtype)
    array = np.full(shape, 7, dtype=np.uint16 if dtype == "bfloat16" else dtype)
    assert sigmaserve.randn(shape, 77, source=source, dtype=dtype, out=array) is array
    assert ours_bits(array) == ours_bits(want)
    tensor = torch.full(shape, 7.0, dtype=TORCH_DTYPES[dtype])
    assert sigmaserve.randn(shape, 77, source=source, dtype=dtype, out=tensor) is tensor
    assert torch_bits(tensor) == ours_bits(want)
    if source == "cpu":
        assert torch_bits(tensor) == torch_bits(torch_randn(shape, 77, dtype))


def test_out_buffer_streams_match_torch_calls():
    """A reused buffer on one Generator continues torch's stream call after call."""
    ours = sigmaserve.Generator(2**40 + 3)
    theirs = torch.Generator("cpu").manual_seed(2**40 + 3)
    buffers = {n: torch.empty(n) for n in (1, 15, 16, 17, 4096 + 3)}
    for n in (1, 15, 17, 4096 + 3, 16, 1, 15, 4096 + 3):
        got = ours.randn((n,), out=buffers[n])
        assert torch_bits(got) == torch_bits(torch.randn(n, generator=theirs))
    assert ours.get_state() == bytes(theirs.get_state().numpy().tobytes())
