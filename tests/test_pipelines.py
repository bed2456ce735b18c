"""Every preset against its diffusers 0.42.1 pipeline class, run for real without weights.

Each case drives the pipeline's own ``__call__`` (``StableDiffusionPipeline``, ...,
``MochiPipeline``) with small stand-ins: a denoiser stub exposing only the config attributes the
pipeline reads, ``prompt_embeds`` given (``encode_prompt`` returns them), CPU generators, and the
preset's scheduler built ``from_config`` from the preset's config. The call stops once the
pipeline has set its scheduler's timesteps and returned from ``prepare_latents``; what it holds
then is compared with ``sigmaserve.get_schedule(None, n, preset=..., width=..., height=...,
num_frames=...)`` and ``sigmaserve.sample_init_latents(...)``: latents bit for bit, timesteps
and sigmas bit for bit or within the float32 tolerances of schedules-diffusers.md §0 (counted
separately). Sizes, frame counts, steps, seeds and batch sizes are random (fixed seed).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

import sigmaserve  # noqa: E402
from sigmaserve import InvalidArgumentError  # noqa: E402

diffusers.utils.logging.set_verbosity_error()

PRESETS = sigmaserve.list_presets()
SIGMA_RTOL = 2.5e-7
TIMESTEP_RTOL = 2e-6


class Stop(Exception):
    """Raised once the pipeline has set its timesteps and prepared its latents."""


class Denoiser(torch.nn.Module):
    """A UNet / transformer stand-in: its config and dtype, nothing else."""

    def __init__(self, dtype: torch.dtype, **config: Any) -> None:
        super().__init__()
        self.config = diffusers.configuration_utils.FrozenDict(config)
        self.weight = torch.nn.Parameter(torch.zeros(1, dtype=dtype), requires_grad=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.weight.dtype


def _mask(embeds: torch.Tensor) -> torch.Tensor:
    return torch.ones(embeds.shape[:2], dtype=torch.long)


@dataclass(frozen=True)
class Spec:
    """How to stand in for one pipeline class: the denoiser's name and config (the published
    model configs' values), and what ``encode_prompt`` returns."""

    denoiser: str
    config: Callable[[dict[str, Any]], dict[str, Any]]
    encoded: Callable[[torch.Tensor, torch.Tensor], tuple[Any, ...]]


SPECS: dict[str, Spec] = {
    "StableDiffusionPipeline": Spec(
        "unet",
        lambda p: {"in_channels": 4, "sample_size": p["width"] // 8, "time_cond_proj_dim": None},
        lambda e, pooled: (e, None),
    ),
    "StableDiffusionXLPipeline": Spec(
        "unet",
        lambda p: {"in_channels": 4, "sample_size": p["width"] // 8, "time_cond_proj_dim": None},
        lambda e, pooled: (e, None, pooled, None),
    ),
    "StableDiffusion3Pipeline": Spec(
        "transformer",
        lambda p: {"in_channels": 16, "patch_size": 2, "sample_size": p["width"] // 8},
        lambda e, pooled: (e, None, pooled, None),
    ),
    "FluxPipeline": Spec(
        "transformer",
        lambda p: {"in_channels": 64, "guidance_embeds": p["name"] == "flux-dev"},
        lambda e, pooled: (e, pooled, torch.zeros(e.shape[1], 3)),
    ),
    "WanPipeline": Spec(
        "transformer",
        lambda p: {"in_channels": 16, "patch_size": (1, 2, 2)},
        lambda e, pooled: (e, None),
    ),
    "HunyuanVideoPipeline": Spec(
        "transformer",
        lambda p: {"in_channels": 16},
        lambda e, pooled: (e, pooled, _mask(e)),
    ),
    "LTXPipeline": Spec(
        "transformer",
        lambda p: {"in_channels": 128, "patch_size": 1, "patch_size_t": 1},
        lambda e, pooled: (e, _mask(e), None, None),
    ),
    "CogVideoXPipeline": Spec(
        "transformer",
        lambda p: {
            "in_channels": 16,
            "patch_size_t": 2 if p["name"] == "cogvideox-1.5" else None,
            "sample_height": p["height"] // 8,
            "sample_width": p["width"] // 8,
            "sample_frames": p["num_frames"],
            "use_rotary_positional_embeddings": False,
        },
        lambda e, pooled: (e, None),
    ),
    "MochiPipeline": Spec(
        "transformer",
        lambda p: {"in_channels": 12},
        lambda e, pooled: (e, _mask(e), None, None),
    ),
}


@dataclass
class Run:
    """What the pipeline held when it stopped."""

    scheduler: Any
    latents: torch.Tensor
    set_timesteps: dict[str, Any]


def drive(
    preset: str,
    *,
    scheduler: Any = None,
    steps: int | None = None,
    size: tuple[int, int] | None = None,
    num_frames: int | None = None,
    seeds: list[int] | int = 0,
    batch: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> Run:
    """Run ``preset``'s diffusers pipeline until its timesteps and latents exist."""
    info = PRESETS[preset]
    cls = getattr(diffusers, info["pipeline"])
    spec = SPECS[info["pipeline"]]
    if scheduler is None:
        scheduler = getattr(diffusers, info["class_name"]).from_config(info["config"])
    seen: dict[str, Any] = {}

    def stop_when_done() -> None:
        if "latents" in seen and "timesteps" in seen:
            raise Stop

    original = scheduler.set_timesteps

    @functools.wraps(original)  # retrieve_timesteps inspects the signature
    def recording_set_timesteps(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        seen["timesteps"] = {"args": args, **kwargs}
        stop_when_done()
        return out

    scheduler.set_timesteps = recording_set_timesteps
    if batch is None:
        batch = len(seeds) if isinstance(seeds, list) else 1
    embeds = torch.zeros(batch, 4, 8, dtype=dtype)
    pooled = torch.zeros(batch, 8, dtype=dtype)

    class Driven(cls):  # type: ignore[misc, valid-type]
        @property
        def _execution_device(self) -> torch.device:
            return torch.device("cpu")

        def encode_prompt(self, *args: Any, **kwargs: Any) -> Any:
            return spec.encoded(embeds, pooled)

        def prepare_latents(self, *args: Any, **kwargs: Any) -> Any:
            out = super().prepare_latents(*args, **kwargs)
            seen["latents"] = out[0] if isinstance(out, tuple) else out
            stop_when_done()
            return out

        def progress_bar(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the denoising loop started before the latents were ready")

    params = inspect.signature(cls.__init__).parameters
    components = {
        name: None
        for name, p in params.items()
        if name != "self" and p.default is inspect.Parameter.empty
    }
    components[spec.denoiser] = Denoiser(dtype, **spec.config({**info, "name": preset}))
    components["scheduler"] = scheduler
    if "requires_safety_checker" in params:
        components["requires_safety_checker"] = False
    pipe = Driven(**components)
    call = inspect.signature(cls.__call__).parameters
    generator = (
        [torch.Generator().manual_seed(s) for s in seeds]
        if isinstance(seeds, list)
        else torch.Generator().manual_seed(seeds)
    )
    kwargs: dict[str, Any] = {"prompt_embeds": embeds, "generator": generator}
    optional = {
        "pooled_prompt_embeds": pooled,
        "prompt_attention_mask": _mask(embeds),
        "guidance_scale": 1.0,
        "output_type": "latent",
        "num_inference_steps": steps,
        "num_frames": num_frames,
        "width": None if size is None else size[0],
        "height": None if size is None else size[1],
    }
    kwargs.update({k: v for k, v in optional.items() if k in call and v is not None})
    with contextlib.suppress(Stop):
        pipe(**kwargs)
    assert "latents" in seen and "timesteps" in seen, preset
    return Run(scheduler, seen["latents"], seen["timesteps"])


def drive_case(case: dict[str, Any]) -> Run:
    """:func:`drive` for a random case."""
    return drive(
        case["preset"],
        steps=case["steps"],
        size=case["size"],
        num_frames=case["num_frames"],
        seeds=case["seeds"],
        batch=case["batch"],
    )


@dataclass
class Tally:
    cases: int = 0
    latents_bit_equal: int = 0
    arrays_bit_equal: int = 0
    arrays_within_tolerance: int = 0
    default_scale_exact: int = 0
    by_preset: Counter[str] | None = None

    def __post_init__(self) -> None:
        self.by_preset = Counter()


def _bits(t: torch.Tensor) -> np.ndarray:
    view = {4: torch.int32, 8: torch.int64, 2: torch.int16}[t.element_size()]
    return t.contiguous().view(view).numpy()


def assert_same_latents(ours: sigmaserve.Latents, theirs: torch.Tensor, label: str) -> None:
    mine = ours.to_torch()
    assert mine.dtype == theirs.dtype, f"{label}: dtype {mine.dtype} != {theirs.dtype}"
    assert tuple(mine.shape) == tuple(theirs.shape), (
        f"{label}: shape {mine.shape} != {theirs.shape}"
    )
    assert np.array_equal(_bits(mine), _bits(theirs)), f"{label}: latents differ"


def check_latents(tally: Tally, case: dict[str, Any], run: Run, label: str, **extra: Any) -> None:
    """Bit for bit. Where the pipeline scales by its scheduler's float32 ``init_noise_sigma``
    (SD, SDXL, CogVideoX), torch's float32 sqrt is not correctly rounded (schedules-diffusers.md
    §0), so the default scale may differ from the pipeline's by 1 ulp: the latents are compared
    with the pipeline's own scale (the documented exact path) and the default scale within it."""
    ours = ours_latents(case, **extra)
    scales = PRESETS[case["preset"]]["layout"]["scales_by_init_noise_sigma"]
    if scales:
        theirs_scale = float(run.scheduler.init_noise_sigma)
        assert ours.init_noise_sigma == pytest.approx(theirs_scale, rel=1.2e-7), label
        tally.default_scale_exact += ours.init_noise_sigma == theirs_scale
        ours = ours_latents(case, sigma=theirs_scale, **extra)
    assert_same_latents(ours, run.latents, label)
    tally.latents_bit_equal += 1


def _array(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def compare_schedule(tally: Tally, mine: sigmaserve.Schedule, scheduler: Any, label: str) -> None:
    for name, rtol in (("timesteps", TIMESTEP_RTOL), ("sigmas", SIGMA_RTOL)):
        theirs = _array(getattr(scheduler, name, None))
        ours = getattr(mine, name)
        if theirs is None:
            continue
        assert ours is not None and ours.dtype == theirs.dtype, f"{label}: {name} dtype"
        assert ours.shape == theirs.shape, f"{label}: {name} {ours.shape} != {theirs.shape}"
        if np.array_equal(ours, theirs):
            tally.arrays_bit_equal += 1
            continue
        scale = float(np.abs(theirs.astype(np.float64)).max())
        ok = np.allclose(
            ours, theirs, rtol=rtol, atol=TIMESTEP_RTOL * scale if name == "timesteps" else 0.0
        )
        assert ok, f"{label}: {name} ours {ours[:5]} diffusers {theirs[:5]}"
        tally.arrays_within_tolerance += 1
    init = float(getattr(scheduler, "init_noise_sigma", 1.0))
    assert mine.init_noise_sigma == pytest.approx(init, rel=2.5e-7), label


def _size(rng: random.Random, preset: str) -> tuple[int, int]:
    # sigmaserve takes what prepare_latents takes; StableDiffusion3Pipeline's check_inputs
    # also wants multiples of vae_scale_factor * patch_size = 16.
    multiple = PRESETS[preset]["layout"]["size_multiple"]
    if PRESETS[preset]["pipeline"] == "StableDiffusion3Pipeline":
        multiple = 16
    low = max(multiple, PRESETS[preset]["vae_scale_factor"] * PRESETS[preset]["pack_factor"])
    pick = lambda: rng.randrange(low, 4 * low + 8 * multiple + 1, multiple)  # noqa: E731
    return pick(), pick()


def _frames(rng: random.Random, preset: str) -> int | None:
    if PRESETS[preset]["num_frames"] is None:
        return None
    return rng.randrange(1, 30)


def random_cases(
    rng: random.Random, per_preset: int, only: str | None = None
) -> Iterator[dict[str, Any]]:
    for preset in PRESETS if only is None else [only]:
        for _ in range(per_preset):
            batch = rng.randrange(1, 4)
            per_item = rng.random() < 0.7
            seeds: list[int] | int = (
                [rng.randrange(2**63) for _ in range(batch)] if per_item else rng.randrange(2**63)
            )
            low = 2 if preset == "mochi" else 1
            yield {
                "preset": preset,
                "steps": rng.randrange(low, 61),
                "size": _size(rng, preset),
                "num_frames": _frames(rng, preset),
                "seeds": seeds,
                "batch": batch,
            }


def ours_latents(case: dict[str, Any], dtype: str = "float32", **extra: Any) -> sigmaserve.Latents:
    seeds = case["seeds"]
    return sigmaserve.sample_init_latents(
        preset=case["preset"],
        width=case["size"][0],
        height=case["size"][1],
        num_frames=case["num_frames"],
        batch_size=case["batch"],
        seeds=seeds,
        seed_mode="per_item" if isinstance(seeds, list) else "batch",
        num_inference_steps=case["steps"],
        dtype=dtype,
        **extra,
    )


def ours_schedule(case: dict[str, Any], **extra: Any) -> sigmaserve.Schedule:
    return sigmaserve.get_schedule(
        extra.pop("scheduler", None),
        case["steps"],
        preset=case["preset"],
        width=case["size"][0],
        height=case["size"][1],
        num_frames=case["num_frames"],
        **extra,
    )


def test_random_sizes_frames_steps_and_seeds() -> None:
    """Latents bit for bit and schedules, every preset, random cases."""
    rng = random.Random(14)
    tally = Tally()
    for case in random_cases(rng, per_preset=12):
        label = str(case)
        run = drive_case(case)
        check_latents(tally, case, run, label)
        compare_schedule(tally, ours_schedule(case), run.scheduler, label)
        tally.cases += 1
        tally.by_preset[case["preset"]] += 1
    print(
        f"\npipeline parity: {tally.cases} cases over {len(tally.by_preset)} presets; latents "
        f"bit-equal {tally.latents_bit_equal}/{tally.cases}; schedule arrays bit-equal "
        f"{tally.arrays_bit_equal}, within float32 tolerance {tally.arrays_within_tolerance}"
    )


def test_pipeline_defaults() -> None:
    """No steps and no size: the pipeline's own defaults (``__call__``'s ``num_inference_steps``,
    its default size and frames) give what ``get_schedule(None, None, preset=...)`` gives."""
    tally = Tally()
    for preset, info in PRESETS.items():
        call = inspect.signature(getattr(diffusers, info["pipeline"]).__call__).parameters
        assert call["num_inference_steps"].default == info["steps"], preset
        if "num_frames" in call and call["num_frames"].default is not None:
            assert call["num_frames"].default == info["num_frames"], preset
        run = drive(preset, seeds=[3])
        compare_schedule(tally, sigmaserve.get_schedule(None, preset=preset), run.scheduler, preset)
        drawn = int(np.prod(run.latents.shape))
        if drawn <= 1 << 22:  # CogVideoX1.5's default 2400 x 2400 video is skipped here
            case = {
                "preset": preset,
                "size": (info["width"], info["height"]),
                "num_frames": None,
                "seeds": [3],
                "batch": 1,
                "steps": info["steps"],
            }
            check_latents(tally, case, run, preset)
    assert tally.arrays_bit_equal + tally.arrays_within_tolerance >= len(PRESETS)


# Other schedulers a user puts on each pipeline: (preset, class, config overrides).
OTHER_SCHEDULERS: list[tuple[str, str, dict[str, Any]]] = [
    ("sd15", "EulerDiscreteScheduler", {}),
    ("sd15", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    ("sd15", "EulerAncestralDiscreteScheduler", {}),
    ("sd15", "DDIMScheduler", {}),
    ("sd15", "LMSDiscreteScheduler", {}),
    ("sdxl", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    ("sdxl", "HeunDiscreteScheduler", {}),
    ("sdxl", "UniPCMultistepScheduler", {}),
    ("sdxl", "EulerDiscreteScheduler", {"timestep_spacing": "trailing"}),
    ("sd21-v", "EulerDiscreteScheduler", {}),
    ("sd3", "FlowMatchEulerDiscreteScheduler", {"use_dynamic_shifting": True}),
    ("sd35-medium", "FlowMatchEulerDiscreteScheduler", {"use_dynamic_shifting": True}),
    ("sd3", "FlowMatchHeunDiscreteScheduler", {}),
    ("flux-dev", "FlowMatchEulerDiscreteScheduler", {"use_karras_sigmas": True}),
    ("flux-schnell", "FlowMatchEulerDiscreteScheduler", {"shift": 2.0}),
    (
        "flux-dev",
        "DPMSolverMultistepScheduler",
        {"use_flow_sigmas": True, "prediction_type": "flow_prediction"},
    ),
    ("flux-dev", "FlowMatchHeunDiscreteScheduler", {}),
    ("wan2.1", "FlowMatchEulerDiscreteScheduler", {"shift": 5.0}),
    ("wan2.2", "UniPCMultistepScheduler", {"flow_shift": 12.0}),
    ("wan2.1", "DPMSolverMultistepScheduler", {}),
    ("hunyuan-video", "FlowMatchEulerDiscreteScheduler", {"shift": 9.0}),
    ("ltx-video", "FlowMatchEulerDiscreteScheduler", {"shift_terminal": None}),
    ("cogvideox", "CogVideoXDPMScheduler", {}),
    ("cogvideox-1.5", "CogVideoXDPMScheduler", {"snr_shift_scale": 3.0}),
    ("mochi", "FlowMatchEulerDiscreteScheduler", {"invert_sigmas": False}),
]


def test_other_schedulers_on_each_pipeline() -> None:
    """A user's scheduler on each pipeline: the same schedule and latents, or both refuse."""
    rng = random.Random(1414)
    tally = Tally()
    agreed_errors = 0
    for preset, name, overrides in OTHER_SCHEDULERS:
        info = PRESETS[preset]
        for _ in range(3):
            case = next(random_cases(rng, per_preset=1, only=preset))
            label = f"{name} {overrides} {case}"
            scheduler = getattr(diffusers, name).from_config({**info["config"], **overrides})
            try:
                run = drive(
                    preset,
                    scheduler=scheduler,
                    steps=case["steps"],
                    size=case["size"],
                    num_frames=case["num_frames"],
                    seeds=case["seeds"],
                    batch=case["batch"],
                )
            except Exception:  # the pipeline refuses this scheduler: so must we
                with pytest.raises(InvalidArgumentError):
                    ours_schedule(case, scheduler=name, **overrides)
                agreed_errors += 1
                continue
            compare_schedule(
                tally, ours_schedule(case, scheduler=name, **overrides), scheduler, label
            )
            check_latents(tally, case, run, label, scheduler=name, **overrides)
    print(
        f"\nother schedulers: {tally.latents_bit_equal} runs bit-equal, schedule arrays "
        f"bit-equal {tally.arrays_bit_equal}, within tolerance {tally.arrays_within_tolerance}, "
        f"refused by both {agreed_errors}"
    )
    assert tally.latents_bit_equal >= 2 * len(OTHER_SCHEDULERS)


@pytest.mark.parametrize(
    ("preset", "dtype"),
    [
        ("sd15", torch.float16),
        ("sdxl", torch.bfloat16),
        ("flux-dev", torch.bfloat16),
        ("sd3", torch.float16),
        ("cogvideox", torch.float16),
        ("mochi", torch.bfloat16),
        ("mochi", torch.float16),
        ("wan2.1", torch.bfloat16),
        ("ltx-video", torch.bfloat16),
    ],
)
def test_half_precision_pipelines(preset: str, dtype: torch.dtype) -> None:
    """The pipeline's dtype: SD/SDXL/SD3/Flux/CogVideoX draw in it (SD scales in it), Mochi
    draws float32 and casts, Wan and LTX keep float32 latents whatever the dtype."""
    rng = random.Random(hash((preset, str(dtype))) & 0xFFFF)
    tally = Tally()
    for case in random_cases(rng, per_preset=4, only=preset):
        run = drive(
            preset,
            steps=case["steps"],
            size=case["size"],
            num_frames=case["num_frames"],
            seeds=case["seeds"],
            batch=case["batch"],
            dtype=dtype,
        )
        name = str(run.latents.dtype).removeprefix("torch.")
        check_latents(tally, case, run, f"{case} {dtype}", dtype=name)
    assert tally.latents_bit_equal == 4


def test_pipeline_call_is_what_the_pipeline_passes() -> None:
    """``sigmaserve.schedules.pipeline_call`` (what ``explain`` prints) is what each pipeline's
    ``__call__`` really passes to ``set_timesteps``: its ``sigmas`` and ``mu``, to the bit."""
    from sigmaserve.schedules import pipeline_call

    rng = random.Random(1414)
    checked = Counter[str]()
    for case in random_cases(rng, per_preset=3):
        run = drive_case(case)
        call = pipeline_call(
            case["preset"],
            None,
            case["steps"],
            width=case["size"][0],
            height=case["size"][1],
            num_frames=case["num_frames"],
        )
        passed = run.set_timesteps
        label = str(case)
        sigmas = passed.get("sigmas")
        if sigmas is None:
            assert call["sigmas"] is None, label
        else:
            theirs = np.asarray(sigmas, dtype=np.float64)
            assert np.array_equal(np.asarray(call["sigmas"], dtype=np.float64), theirs), label
            checked["sigmas"] += 1
        if passed.get("mu") is None:
            assert call["mu"] is None, label
        else:
            assert call["mu"] == float(passed["mu"]), label
            assert call["shift"] is not None and call["shift"]["mu"] == call["mu"], label
            checked["mu"] += 1
        assert (call["width"], call["height"]) == case["size"], label
    assert checked["sigmas"] >= 6 and checked["mu"] >= 6, checked


# Presets whose pipeline wants more than whole latent cells (whole transformer patches).
PATCHED = [p for p, i in PRESETS.items() if i["layout"]["size_multiple"] > i["vae_scale_factor"]]


def test_patch_multiples_cover_the_patched_pipelines() -> None:
    """The transformer pipelines whose check_inputs want whole patches are all in PATCHED (each
    one's refusal is then checked against the pipeline below)."""
    assert {"sd3", "sd35", "sd35-medium", "wan2.1", "wan2.2", "hunyuan-video"} <= set(PATCHED)


@pytest.mark.parametrize("preset", PATCHED)
def test_sizes_the_pipeline_refuses_are_refused(preset: str) -> None:
    """A size off the preset's multiple: the pipeline's ``check_inputs`` raises, and sigmaserve
    names the field instead of drawing latents the pipeline would not run. (Every other preset
    takes any whole number of latent cells, as its pipeline does; Flux rounds down as
    ``prepare_latents`` does.)"""
    multiple = PRESETS[preset]["layout"]["size_multiple"]
    width, height = PRESETS[preset]["width"] - multiple // 2, PRESETS[preset]["height"]
    frames = None if PRESETS[preset]["num_frames"] is None else 1
    with pytest.raises(InvalidArgumentError) as refused:
        sigmaserve.sample_init_latents(
            preset=preset, width=width, height=height, seeds=[0], num_frames=frames
        )
    assert refused.value.field == "width"
    try:
        drive(preset, steps=2, size=(width, height), num_frames=frames, seeds=[0])
    except ValueError as exc:
        assert "divisible by" in str(exc), exc
    else:
        pytest.fail(f"{PRESETS[preset]['pipeline']} ran {width}x{height}")
