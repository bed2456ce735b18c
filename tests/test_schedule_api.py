"""The public schedule API: golden values from the spec, dtypes, errors naming their field,
presets, config handling, warnings and the fix_quirks option, immutability and to_dict.

Numbers here are diffusers 0.42.1 reference values quoted in schedules-diffusers.md §9 (checked
there against diffusers), not values produced by sigmaserve itself.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import sigmaserve
from sigmaserve import InvalidArgumentError, Schedule, TooLargeError, get_schedule, list_presets
from sigmaserve.schedules import (
    excluded_schedulers,
    list_schedulers,
    scheduler_families,
    scheduler_family_descriptions,
)

F32 = np.float32


def close(values: object, expected: list[float], rtol: float = 2.5e-7) -> bool:
    return bool(np.allclose(np.asarray(values, dtype=np.float64), expected, rtol=rtol, atol=0.0))


# ---- golden values (schedules-diffusers.md §9) ----------------------------------------------


def test_sd15_lms_linspace_50() -> None:
    s = get_schedule("LMSDiscreteScheduler", 50)
    assert s.timesteps.dtype == np.float32 and s.timesteps.shape == (50,)
    assert s.timesteps[:3].tolist() == [999.0, F32(978.61224), F32(958.2245)]
    assert s.timesteps[-1] == 0.0
    assert close(s.sigmas[:3], [14.614647, 12.936777, 11.49165])
    assert close(s.sigmas[-3:-1], [0.13933751, 0.029167535]) and s.sigmas[-1] == 0.0
    assert math.isclose(s.init_noise_sigma, 14.614647, rel_tol=2.5e-7)


def test_sdxl_euler_leading_30() -> None:
    s = get_schedule("EulerDiscreteScheduler", 30, preset="sdxl")
    assert s.timesteps[:3].tolist() == [958.0, 925.0, 892.0] and s.timesteps[-1] == 1.0
    assert close(s.sigmas[:2], [11.4768505, 9.543586])
    assert math.isclose(s.init_noise_sigma, 11.520334243774414, rel_tol=2.5e-7)
    for steps, init in ((20, 11.073581), (25, 11.718795), (50, 13.158469)):
        got = get_schedule("EulerDiscreteScheduler", steps, preset="sdxl").init_noise_sigma
        assert math.isclose(got, init, rel_tol=5e-7)


def test_dpmpp_2m_karras_25() -> None:
    s = get_schedule("DPMSolverMultistepScheduler", 25, use_karras_sigmas=True)
    assert s.timesteps.dtype == np.int64
    assert s.timesteps.tolist()[:5] == [999, 970, 938, 905, 868]
    assert s.timesteps.tolist()[-4:] == [9, 4, 1, 0]
    assert close(s.sigmas[:3], [14.614647, 12.283042, 10.277832]) and s.sigmas[-1] == 0.0
    assert s.init_noise_sigma == 1.0


def test_sd3_flow_match_28_double_shift() -> None:
    s = get_schedule("FlowMatchEulerDiscreteScheduler", 28, preset="sd3")
    assert s.timesteps[0] == 1000.0
    assert close(s.timesteps[-3:], [199.82698, 110.90573, 8.928572], rtol=1e-6)
    assert close(s.sigmas[-2:-1], [0.008928572], rtol=1e-6) and s.sigmas[-1] == 0.0
    assert any("double shift" in w for w in s.warnings)


def test_flux_dev_pipeline_sigmas() -> None:
    sigmas = np.linspace(1.0, 1 / 28, 28).tolist()
    s = get_schedule("FlowMatchEulerDiscreteScheduler", preset="flux-dev", sigmas=sigmas, mu=1.15)
    assert s.num_inference_steps == 28
    assert close(s.timesteps[:2], [1000.0, 988.4086], rtol=1e-6)
    assert close(s.timesteps[-1:], [104.7209], rtol=1e-6)


def test_discrete_families() -> None:
    assert get_schedule("DDIMScheduler", 50).timesteps[:3].tolist() == [981, 961, 941]
    assert get_schedule("DDPMScheduler", 50, preset=None).timesteps[:2].tolist() == [980, 960]
    pndm = get_schedule("PNDMScheduler", 50).timesteps.tolist()
    assert pndm[:4] == [981, 961, 961, 941] and len(pndm) == 51
    assert get_schedule("LCMScheduler", 4, preset=None).timesteps.tolist() == [999, 759, 499, 259]
    assert get_schedule("DDIMScheduler", 50).sigmas is None


def test_edm_euler_init_noise_sigma_is_float64() -> None:
    s = get_schedule("EDMEulerScheduler", 20, preset=None)
    assert s.init_noise_sigma == 80.00624975587844
    assert close(s.sigmas[:2], [80.0, 59.657524])
    assert s.betas.size == 0


def test_zero_snr_sigma_max_is_4096() -> None:
    s = get_schedule(
        "EulerDiscreteScheduler", 30, rescale_betas_zero_snr=True, timestep_spacing="trailing"
    )
    assert s.init_noise_sigma == pytest.approx(4096.0, rel=1e-6)
    assert s.alphas_cumprod[-1] == F32(2.0**-24)
    ddim = get_schedule("DDIMScheduler", 30, rescale_betas_zero_snr=True)
    assert ddim.alphas_cumprod[-1] == 0.0 and ddim.betas[-1] == 1.0


# ---- dtypes and shapes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheduler", "dtype"),
    [
        ("EulerDiscreteScheduler", np.float32),
        ("HeunDiscreteScheduler", np.float32),
        ("DPMSolverSDEScheduler", np.float64),
        ("DPMSolverMultistepScheduler", np.int64),
        ("UniPCMultistepScheduler", np.int64),
        ("DDIMScheduler", np.int64),
        ("EDMEulerScheduler", np.float32),
        ("FlowMatchEulerDiscreteScheduler", np.float32),
    ],
)
def test_timestep_dtypes(scheduler: str, dtype: type) -> None:
    s = get_schedule(scheduler, 10)
    assert s.timesteps.dtype == dtype
    assert s.betas.dtype == np.float32 and s.alphas_cumprod.dtype == np.float32
    assert s.sigmas is None or s.sigmas.dtype == np.float32


# What a few classes need beyond class defaults and 10 steps (their upstream rules).
NEEDS: dict[str, tuple[int, dict]] = {
    "FlowMatchEulerDiscreteScheduler": (10, {"mu": 1.0}),
    "SCMScheduler": (2, {}),  # intermediate_timesteps defaults to two steps
    "ConsistencyDecoderScheduler": (2, {}),  # two fixed timesteps
    "HeliosScheduler": (10, {"stage_index": 0}),  # three pyramid stages by default
    "HeliosDMDScheduler": (10, {"stage_index": 0}),
    "RFD4ProteinaScheduler": (
        30,
        {"schedule_mode": "log", "noise_mode": "tan", "tsr_k": 1.0, "tsr_sigma": 1.0},
    ),
}


def test_every_listed_scheduler_works_with_defaults() -> None:
    names = list_schedulers()
    assert len(names) == 46
    for name in names:
        steps, extra = NEEDS.get(name, (10, {}))
        s = get_schedule(name, steps, preset=None, **extra)
        assert s.scheduler == name and s.timesteps.size >= 1


@pytest.mark.parametrize(
    ("scheduler", "extra", "timesteps", "sigmas", "training"),
    [
        ("CMStochasticIterativeScheduler", {}, np.float64, np.float32, None),
        ("FlowMapEulerDiscreteScheduler", {}, np.float64, np.float64, None),
        ("HeliosScheduler", {"stage_index": 1}, np.float64, np.float64, None),
        ("HeliosScheduler", {"stages": 1}, np.float32, np.float32, None),
        ("KarrasVeScheduler", {}, np.int64, np.float32, None),
        ("CogVideoXDDIMScheduler", {}, np.int64, None, np.float64),
        ("CogVideoXDPMScheduler", {"beta_schedule": "linear"}, np.int64, None, np.float32),
        ("IPNDMScheduler", {}, np.float32, None, np.float32),
        ("DPMSolverMultistepInverseScheduler", {}, np.int64, np.float32, np.float32),
    ],
)
def test_added_class_dtypes(
    scheduler: str, extra: dict, timesteps: type, sigmas: type | None, training: type | None
) -> None:
    """The dtypes diffusers 0.42.1 gives (float64 where it computes in float64)."""
    s = get_schedule(scheduler, 10, preset=None, **extra)
    assert s.timesteps.dtype == timesteps
    assert (s.sigmas is None) == (sigmas is None)
    assert s.sigmas is None or s.sigmas.dtype == sigmas
    if training is None:
        assert s.betas.size == 0
    else:
        assert s.betas.dtype == training and s.betas.size > 0


# ---- the scheduler catalog -------------------------------------------------------------------


def test_every_diffusers_scheduler_is_supported_or_excluded() -> None:
    """Enumerates what ``diffusers.schedulers`` exports: every scheduler class is either
    reproduced or listed as excluded with a reason, never both, never neither."""
    schedulers = pytest.importorskip("diffusers.schedulers")
    exported = {
        name
        for name in dir(schedulers)
        if isinstance(getattr(schedulers, name), type)
        and hasattr(getattr(schedulers, name), "set_timesteps")
    }
    supported = set(list_schedulers())
    excluded = excluded_schedulers()
    assert supported.isdisjoint(excluded)
    assert exported == supported | set(excluded)
    assert all(reason for reason in excluded.values())


def test_families_cover_every_scheduler_with_a_small_vocabulary() -> None:
    families = scheduler_families()
    vocabulary = scheduler_family_descriptions()
    assert set(families) == set(list_schedulers())
    assert set(vocabulary) == {"alpha", "sigma", "multistep", "flow_match", "edm", "consistency"}
    assert set(families.values()) == set(vocabulary)
    assert families["DDIMScheduler"] == "alpha"
    assert families["EulerDiscreteScheduler"] == "sigma"
    assert families["UniPCMultistepScheduler"] == "multistep"
    assert families["FlowMatchEulerDiscreteScheduler"] == "flow_match"
    assert families["EDMEulerScheduler"] == "edm"
    assert families["LCMScheduler"] == "consistency"


def test_excluded_scheduler_is_refused_with_its_reason() -> None:
    with pytest.raises(InvalidArgumentError, match="discrete") as info:
        get_schedule("VQDiffusionScheduler", 10)
    assert info.value.field == "scheduler"


# ---- presets and config ----------------------------------------------------------------------


def test_presets_listed_with_configs() -> None:
    presets = list_presets()
    assert set(presets) >= {
        "sd15",
        "sd21",
        "sd21-v",
        "sdxl",
        "sdxl-turbo",
        "sd3",
        "sd35",
        "flux-dev",
        "flux-schnell",
    }
    assert presets["sd15"]["class_name"] == "PNDMScheduler"
    assert presets["sdxl"]["config"]["timestep_spacing"] == "leading"
    assert presets["flux-dev"]["config"]["use_dynamic_shifting"] is True
    assert presets["sd3"]["latent_channels"] == 16


def test_sd15_preset_equals_repository_config() -> None:
    from conftest import SD15_SCHEDULER_CONFIG

    by_preset = get_schedule("EulerDiscreteScheduler", 25)
    by_config = get_schedule(
        "EulerDiscreteScheduler", 25, preset=None, config=SD15_SCHEDULER_CONFIG
    )
    assert by_preset == by_config
    assert (
        by_preset.config["timestep_spacing"] == "linspace"
    )  # Euler's own default (not in the JSON)


def test_use_default_values_marker_is_honoured() -> None:
    # pipe.scheduler.config of a PNDM pipeline lists keys that only hold class defaults.
    config = {
        "timestep_spacing": "leading",
        "steps_offset": 1,
        "_use_default_values": ["timestep_spacing"],
    }
    s = get_schedule("EulerDiscreteScheduler", 10, preset=None, config=config)
    assert s.config["timestep_spacing"] == "linspace" and s.config["steps_offset"] == 1


def test_precedence_and_numbers_from_json() -> None:
    s = get_schedule(
        "EulerDiscreteScheduler",
        10,
        preset="sdxl",
        config={"timestep_spacing": "trailing", "num_train_timesteps": 1000.0},
        timestep_spacing="linspace",
    )
    assert s.config["timestep_spacing"] == "linspace"
    assert s.config["num_train_timesteps"] == 1000 and isinstance(
        s.config["num_train_timesteps"], int
    )


def test_other_schedulers_keys_are_ignored_with_a_warning() -> None:
    s = get_schedule("EulerDiscreteScheduler", 10, skip_prk_steps=True)
    assert any("skip_prk_steps" in w for w in s.warnings)


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scheduler": "NoSuchScheduler"}, "scheduler"),
        ({"scheduler": "eulerdiscreteschedular"}, "scheduler"),
        ({"scheduler": 3}, "scheduler"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"num_inference_steps": -5}, "num_inference_steps"),
        ({"num_inference_steps": True}, "num_inference_steps"),
        ({"num_inference_steps": 2.5}, "num_inference_steps"),
        ({"scheduler": "DDIMScheduler", "num_inference_steps": 1001}, "num_inference_steps"),
        ({"preset": "SD-15x"}, "preset"),
        ({"preset": 15}, "preset"),
        ({"config": [1, 2]}, "config"),
        ({"beta_start": 0.02, "beta_end": 0.01, "preset": None}, "beta_start"),
        ({"beta_start": float("nan")}, "beta_start"),
        ({"beta_end": float("inf")}, "beta_end"),
        ({"num_train_timesteps": True}, "num_train_timesteps"),
        ({"num_train_timesteps": 999.5}, "num_train_timesteps"),
        ({"scheduler": "EulerDiscreteScheduler", "use_karras_sigmas": "yes"}, "use_karras_sigmas"),
        ({"timestep_spacing": "evenly"}, "timestep_spacing"),
        ({"use_karas_sigmas": True}, "use_karas_sigmas"),
        (
            {
                "scheduler": "EulerDiscreteScheduler",
                "use_karras_sigmas": True,
                "use_beta_sigmas": True,
            },
            "use_beta_sigmas",
        ),
        ({"trained_betas": [0.1, 0.2]}, "trained_betas"),
        ({"strength": 1.5}, "strength"),
        (
            {
                "scheduler": "EulerDiscreteScheduler",
                "timesteps": [900.0, 500.0],
                "num_inference_steps": 3,
            },
            "num_inference_steps",
        ),
        ({"scheduler": "DDIMScheduler", "timesteps": [900, 500]}, "timesteps"),
        (
            {
                "scheduler": "FlowMatchEulerDiscreteScheduler",
                "preset": "flux-dev",
                "pipeline": False,
            },
            "mu",
        ),
        ({"mu": float("nan"), "scheduler": "FlowMatchEulerDiscreteScheduler"}, "mu"),
    ],
)
def test_errors_name_their_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        get_schedule(**kwargs)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_too_many_steps_is_too_large() -> None:
    with pytest.raises(TooLargeError):
        get_schedule("EulerDiscreteScheduler", 10**7)


# ---- warnings and fix_quirks ----------------------------------------------------------------


def test_trailing_minus_one_warning_and_fix() -> None:
    s = get_schedule("DDIMScheduler", 61, timestep_spacing="trailing")
    assert s.timesteps.size == 62 and s.timesteps[-1] == -1
    assert any("-1" in w for w in s.warnings)
    fixed = get_schedule("DDIMScheduler", 61, timestep_spacing="trailing", fix_quirks=True)
    assert fixed.timesteps.size == 61 and fixed.timesteps[-1] >= 0
    euler = get_schedule("EulerDiscreteScheduler", 61, timestep_spacing="trailing", fix_quirks=True)
    assert euler.timesteps.size == 61 and euler.sigmas.size == 62


def test_flow_double_shift_fix() -> None:
    fixed = get_schedule("FlowMatchEulerDiscreteScheduler", 28, preset="sd3", fix_quirks=True)
    # shift(1/N) with shift 3: 3 * 0.001 / (1 + 2 * 0.001)
    assert fixed.sigmas[-2] == pytest.approx(0.003 / 1.002, rel=1e-6)


def test_mu_warning_for_dpm() -> None:
    s = get_schedule(
        "DPMSolverMultistepScheduler", 10, use_flow_sigmas=True, use_dynamic_shifting=True, mu=1.0
    )
    assert any("flow_shift" in w for w in s.warnings)
    assert s.config["flow_shift"] == 1.0


# ---- custom arrays and img2img ---------------------------------------------------------------


def test_custom_arrays_set_the_length() -> None:
    s = get_schedule("EulerDiscreteScheduler", sigmas=[14.6, 5.0, 1.0, 0.1, 0.0])
    assert s.num_inference_steps == 4 and s.sigmas.size == 5
    t = get_schedule("DPMSolverMultistepScheduler", timesteps=[999, 500, 100])
    assert t.timesteps.tolist() == [999, 500, 100]


def test_img2img_strength() -> None:
    s = get_schedule("EulerDiscreteScheduler", 50, strength=0.75)
    assert s.img2img is not None
    assert s.img2img.begin_index == 13 and s.img2img.num_timesteps == 37
    assert s.img2img.start_timestep == float(s.timesteps[13])
    flow = get_schedule("FlowMatchEulerDiscreteScheduler", 50, preset="sd3", strength=0.75)
    assert flow.img2img.begin_index == 12  # SD3/Flux take one more step
    assert get_schedule("EulerDiscreteScheduler", 50).img2img is None


# ---- the Schedule object ---------------------------------------------------------------------


def test_schedule_is_immutable_and_round_trips() -> None:
    s = get_schedule("HeunDiscreteScheduler", 10, strength=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.scheduler = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):
        s.timesteps[0] = 1.0
    data = json.loads(json.dumps(s.to_dict()))
    back = Schedule.from_dict(data)
    assert back == s
    assert back.timesteps.dtype == s.timesteps.dtype


@pytest.mark.parametrize(
    ("scheduler", "extra"),
    [("FlowMapEulerDiscreteScheduler", {}), ("CogVideoXDDIMScheduler", {})],
)
def test_float64_arrays_round_trip(scheduler: str, extra: dict) -> None:
    """JSON (to_dict / from_dict) and the gRPC message keep float64 arrays float64."""
    from sigmaserve import wire

    s = get_schedule(scheduler, 10, preset=None, **extra)
    for back in (
        Schedule.from_dict(json.loads(json.dumps(s.to_dict()))),
        wire.schedule_from_proto(wire.schedule_to_proto(s)),
    ):
        assert back == s
        for name in ("sigmas", "betas", "alphas_cumprod"):
            mine, theirs = getattr(back, name), getattr(s, name)
            assert (mine is None and theirs is None) or mine.dtype == theirs.dtype


def test_ecosystem_names_dispatch() -> None:
    try:
        s = get_schedule("comfyui:karras", 20)
    except InvalidArgumentError as exc:  # the ecosystem engineer's module may reject presets
        assert exc.field
        return
    assert s.sigmas is not None and s.sigmas.size == 21


def test_package_exports() -> None:
    assert sigmaserve.get_schedule is get_schedule
