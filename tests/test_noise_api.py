"""The public noise API: types, shapes, generator behaviour and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import sigmaserve
from sigmaserve import noise
from sigmaserve.errors import InvalidArgumentError, TooLargeError


def test_return_types_and_shapes():
    assert sigmaserve.randn((2, 3), 0).dtype == np.float32
    assert sigmaserve.randn((2, 3), 0).shape == (2, 3)
    assert sigmaserve.randn(5, 0).shape == (5,)
    assert sigmaserve.randn((), 0).shape == ()
    assert sigmaserve.randn((2, 3), 0, dtype="float64").dtype == np.float64
    assert sigmaserve.randn((2, 3), 0, dtype="float16").dtype == np.float16
    bf = sigmaserve.randn((2, 3), 0, dtype="bfloat16")
    assert bf.dtype == np.uint16 and bf.shape == (2, 3)
    assert sigmaserve.randn((2, 3), 0, dtype=np.float64).dtype == np.float64
    assert sigmaserve.randn((0, 3), 0).shape == (0, 3)
    for source in noise.SOURCES:
        assert sigmaserve.randn((1, 4, 8, 8), 1, source=source).shape == (1, 4, 8, 8)


def test_seeds_wrap_like_torch():
    a = sigmaserve.randn(100, -1)
    b = sigmaserve.randn(100, 2**64 - 1)
    assert a.tobytes() == b.tobytes()
    # CPU: only the low 32 bits matter; CUDA/NV: all 64 bits.
    assert sigmaserve.randn(64, 5).tobytes() == sigmaserve.randn(64, 2**32 + 5).tobytes()
    for source in ("cuda", "a1111_nv"):
        assert (
            sigmaserve.randn(64, 5, source=source).tobytes()
            != sigmaserve.randn(64, 2**32 + 5, source=source).tobytes()
        )
    assert sigmaserve.randn(8, np.int64(7)).tobytes() == sigmaserve.randn(8, 7).tobytes()


@pytest.mark.parametrize("seed", [True, 1.0, "1", None, 2**64, -(2**63) - 1, [1]])
def test_bad_seed(seed):
    with pytest.raises(InvalidArgumentError) as e:
        sigmaserve.randn(4, seed)
    assert e.value.field == "seed"
    with pytest.raises(InvalidArgumentError):
        sigmaserve.Generator(seed)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(shape=(-1, 2)), "shape"),
        (dict(shape=(2.0,)), "shape"),
        (dict(shape="12"), "shape"),
        (dict(shape=(True, 2)), "shape"),
        (dict(dtype="int8"), "dtype"),
        (dict(dtype="float8"), "dtype"),
        (dict(source="gpu"), "source"),
        (dict(source="cuda", gpu="rtx9999"), "gpu"),
        (dict(source="cuda", gpu=(0, 1024)), "gpu"),
        (dict(source="cuda", gpu=(10, 100)), "gpu"),
        (dict(source="cuda", gpu=(10,)), "gpu"),
        (dict(gpu="t4"), "gpu"),
        (dict(cpu_kernel="sse"), "cpu_kernel"),
        (dict(source="cuda", cpu_kernel="avx2"), "cpu_kernel"),
        (dict(max_elements=-1), "max_elements"),
    ],
)
def test_bad_arguments(kwargs, field):
    args = dict(shape=(2, 3), seed=0)
    args.update(kwargs)
    shape = args.pop("shape")
    seed = args.pop("seed")
    with pytest.raises(InvalidArgumentError) as e:
        sigmaserve.randn(shape, seed, **args)
    assert e.value.field == field
    assert isinstance(e.value, ValueError)


def test_max_elements_is_checked_before_allocation():
    with pytest.raises(TooLargeError) as e:
        sigmaserve.randn((1 << 20, 1 << 20, 1 << 20), 0, max_elements=1000)
    assert e.value.field == "shape"
    with pytest.raises(TooLargeError):
        noise.sample_noise((4, 4, 64, 64), [0, 1, 2, 3], max_elements=1000)
    with pytest.raises(TooLargeError) as e:
        noise.sample_noise(
            (1, 4, 8, 8), 0, seed_mode="batch", batch_index=[10**9], max_elements=10**6
        )
    assert e.value.field == "batch_index"
    with pytest.raises((TooLargeError, InvalidArgumentError)):
        sigmaserve.randn((1 << 62, 1 << 62), 0)


def test_gpu_presets_and_generator_properties():
    presets = noise.gpu_presets()
    for name in ("t4", "rtx3060", "rtx3090", "rtx4090", "a100", "h100", "unlimited"):
        assert name in presets
    assert presets["h100"] == (132, 2048)
    g = sigmaserve.Generator(7, source="cuda", gpu="RTX4090")
    assert g.gpu == (128, 1536) and g.offset == 0 and g.source == "cuda"
    g.randn((4, 64, 64))
    assert g.offset == 4
    g.randn((1_000_000,))  # above T = 196,608: 4 * ceil(n / 4T) = 8
    assert g.offset == 12
    g.randn((3,), "float64")
    assert g.offset == 16
    assert sigmaserve.Generator(7, source="cuda", gpu=(128, 1536)).gpu == (128, 1536)
    nv = sigmaserve.Generator(7, source="a1111_nv")
    nv.randn(10)
    nv.randn(10)
    assert nv.offset == 2
    cpu = sigmaserve.Generator(-1)
    assert cpu.seed == 2**64 - 1 and cpu.offset is None and cpu.cpu_kernel == "avx2"
    with pytest.raises(InvalidArgumentError):
        cpu.get_offset()
    assert "Generator" in repr(cpu)


def test_gpu_only_matters_above_thread_count():
    small = [sigmaserve.randn((40960,), 3, source="cuda", gpu=g) for g in (None, "t4", "h100")]
    assert small[0].tobytes() == small[1].tobytes() == small[2].tobytes()
    big_t4 = sigmaserve.randn((40961,), 3, source="cuda", gpu="t4")
    big_h100 = sigmaserve.randn((40961,), 3, source="cuda", gpu="h100")
    assert big_t4[:40960].tobytes() == big_h100[:40960].tobytes()
    assert big_t4[40960] != big_h100[40960]


def test_generator_state_round_trip_and_errors():
    for source in noise.SOURCES:
        g = sigmaserve.Generator(99, source=source)
        g.randn(5)
        state = g.get_state()
        a = g.randn((3, 17))
        g.set_state(state)
        assert g.randn((3, 17)).tobytes() == a.tobytes()
        with pytest.raises(InvalidArgumentError) as e:
            g.set_state(b"\x00" * 7)
        assert e.value.field == "state"
        with pytest.raises(InvalidArgumentError):
            g.set_state("not bytes")
    assert len(sigmaserve.Generator(1).get_state()) == 5056
    g = sigmaserve.Generator(1, source="cuda")
    with pytest.raises(InvalidArgumentError):
        g.set_state(
            (1).to_bytes(8, "little") + (3).to_bytes(8, "little")
        )  # offset not a multiple of 4


def test_manual_seed_and_skip():
    g = sigmaserve.Generator(1)
    first = g.randn(20)
    assert g.manual_seed(1) is g
    assert g.randn(20).tobytes() == first.tobytes()
    g.manual_seed(1)
    g.skip(20)
    h = sigmaserve.Generator(1)
    h.randn(20)
    assert g.randn(33).tobytes() == h.randn(33).tobytes()


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(seeds=[1, 2]), "seeds"),  # per_item needs 4
        (dict(seeds=[]), "seeds"),
        (dict(seeds=[1], seed_mode="nope"), "seed_mode"),
        (dict(seeds=[1, 2], seed_mode="batch"), "seeds"),
        (dict(seeds=[1, 2, 3], seed_mode="a1111"), "seeds"),
        (dict(seeds=[1, 2, 3, 4], batch_index=[0, 1, 2, 3]), "batch_index"),
        (dict(seeds=[1], seed_mode="batch", batch_index=[0, 1]), "batch_index"),
        (dict(seeds=[1], seed_mode="batch", batch_index=[0, -1, 0, 0]), "batch_index"),
        (
            dict(seeds=[1], seed_mode="a1111", subseeds=[2], subseed_strength=1.5),
            "subseed_strength",
        ),
        (
            dict(seeds=[1], seed_mode="a1111", subseeds=[2], subseed_strength=float("nan")),
            "subseed_strength",
        ),
        (
            dict(seeds=[1], seed_mode="a1111", subseeds=[2], subseed_strength="0.5"),
            "subseed_strength",
        ),
        (dict(seeds=[1], seed_mode="a1111", subseed_strength=0.5), "subseeds"),
        (dict(seeds=[1], seed_mode="a1111", subseeds=[1, 2], subseed_strength=0.5), "subseeds"),
        (dict(seeds=[1], seed_mode="a1111", subseeds=[True], subseed_strength=0.5), "subseeds"),
        (dict(seeds=[1, 2, 3, 4], subseeds=[5], subseed_strength=0.5), "subseeds"),
        (dict(seeds=[1], seed_mode="batch", seed_resize_from=(4, 4)), "seed_resize_from"),
        (dict(seeds=[1], seed_mode="a1111", seed_resize_from=(0, 4)), "seed_resize_from"),
        (dict(seeds=[1], seed_mode="a1111", seed_resize_from=(4,)), "seed_resize_from"),
        (dict(seeds=[1.5, 2, 3, 4]), "seeds"),
    ],
)
def test_sample_noise_validation(kwargs, field):
    with pytest.raises(InvalidArgumentError) as e:
        noise.sample_noise((4, 4, 8, 8), **kwargs)
    assert e.value.field == field


def test_sample_noise_needs_a_batch_and_4d_for_extras():
    with pytest.raises(InvalidArgumentError) as e:
        noise.sample_noise((), [1])
    assert e.value.field == "shape"
    with pytest.raises(InvalidArgumentError) as e:
        noise.sample_noise((0, 4), [1])
    assert e.value.field == "shape"
    with pytest.raises(InvalidArgumentError) as e:
        noise.sample_noise((2, 16), 1, seed_mode="a1111", subseeds=3, subseed_strength=0.5)
    assert e.value.field == "subseeds"


def test_sample_noise_modes_basic_relations():
    per_item = noise.sample_noise((3, 4, 8, 8), [10, 11, 12])
    a1111 = noise.sample_noise((3, 4, 8, 8), 10, seed_mode="a1111")
    assert per_item.tobytes() == a1111.tobytes()
    batch = noise.sample_noise((3, 4, 8, 8), 10, seed_mode="batch")
    assert batch.tobytes() == sigmaserve.randn((3, 4, 8, 8), 10).tobytes()
    same = noise.sample_noise((2, 4, 8, 8), [5, 6], seed_resize_from=(8, 8))
    assert same.tobytes() == noise.sample_noise((2, 4, 8, 8), [5, 6]).tobytes()
    for dtype in noise.DTYPES:
        out = noise.sample_noise(
            (2, 4, 8, 8),
            [5, 6],
            seed_mode="a1111",
            dtype=dtype,
            subseeds=[1, 2],
            subseed_strength=0.5,
        )
        assert out.shape == (2, 4, 8, 8)
    full = noise.sample_noise((2, 4, 8, 8), 5, seed_mode="a1111", subseeds=9, subseed_strength=1.0)
    # strength 1 gives the subseeds' noise (subseed + i), up to float rounding
    want = noise.sample_noise((2, 4, 8, 8), [9, 10])
    np.testing.assert_allclose(full, want, atol=2e-6)


def test_to_torch_helper():
    torch = pytest.importorskip("torch")
    bf = sigmaserve.randn((2, 3), 4, dtype="bfloat16")
    t = noise.to_torch(bf, "bfloat16")
    assert t.dtype == torch.bfloat16 and tuple(t.shape) == (2, 3)
    assert noise.to_torch(sigmaserve.randn(3, 4)).dtype == torch.float32
    assert sigmaserve.Generator(3).to_torch().initial_seed() == 3


def test_simd_switch_is_harmless():
    a = sigmaserve.randn((3, 1000), 8, source="cuda", gpu="t4")
    noise.set_simd_enabled(False)
    try:
        b = sigmaserve.randn((3, 1000), 8, source="cuda", gpu="t4")
    finally:
        noise.set_simd_enabled(True)
    assert a.tobytes() == b.tobytes()
    assert noise.simd_isa() in ("avx2+fma", "portable")


@pytest.mark.parametrize(
    ("out", "dtype", "message"),
    [
        (np.empty((2, 3), np.float32), "float32", "has shape"),
        (np.empty((2, 3, 5), np.float64), "float32", "has dtype"),
        (np.empty((2, 3, 5), np.float16), "bfloat16", "has dtype"),
        (np.empty((2, 5, 3), np.float32).transpose(0, 2, 1), "float32", "C-contiguous"),
        (np.empty((2, 5, 3), np.float16).transpose(0, 2, 1), "float16", "C-contiguous"),
        ([0.0] * 30, "float32", "numpy array or a CPU torch tensor"),
    ],
)
def test_bad_out_buffers(out, dtype, message):
    with pytest.raises(InvalidArgumentError, match=message) as info:
        sigmaserve.randn((2, 3, 5), 1, dtype=dtype, out=out)
    assert info.value.field == "out"


def test_read_only_out_and_generator_not_advanced_on_error():
    frozen = np.zeros((4,), np.float32)
    frozen.flags.writeable = False
    gen = sigmaserve.Generator(5)
    with pytest.raises(InvalidArgumentError, match="writeable"):
        gen.randn((4,), out=frozen)
    with pytest.raises(InvalidArgumentError, match="has shape"):
        gen.randn((5,), out=np.empty(4, np.float32))
    assert not frozen.any()
    np.testing.assert_array_equal(gen.randn((4,)), sigmaserve.randn((4,), 5))


def test_torch_out_must_be_a_plain_cpu_tensor():
    torch = pytest.importorskip("torch")
    with pytest.raises(InvalidArgumentError, match="has dtype"):
        sigmaserve.randn((3,), 1, out=torch.empty(3, dtype=torch.float64))
    with pytest.raises(InvalidArgumentError, match="grad"):
        sigmaserve.randn((3,), 1, out=torch.empty(3, requires_grad=True))
    with pytest.raises(InvalidArgumentError, match="CPU tensor"):
        sigmaserve.randn((3,), 1, out=torch.empty(3, device="meta"))
    with pytest.raises(InvalidArgumentError, match="dense"):
        sigmaserve.randn((3,), 1, out=torch.zeros(3).to_sparse())
