"""Parity of sigmaserve.get_schedule with the installed diffusers, computed at run time.

Every configuration is built twice: ``DiffusersClass.from_config(preset < config < overrides)``
followed by ``set_timesteps(...)``, and ``sigmaserve.get_schedule(...)`` with the same inputs.
Timesteps must be equal in value and dtype (integer timesteps and spacing-only float timesteps
bit-equal; timesteps that pass through float32 transcendental functions within the tolerances of
schedules-diffusers.md §0); sigmas, betas, alphas_cumprod and init_noise_sigma within 2 float32
ulp; errors must agree (both raise or neither). The number of configurations compared is printed.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

import sigmaserve  # noqa: E402
from sigmaserve.errors import InvalidArgumentError  # noqa: E402

diffusers.utils.logging.set_verbosity_error()

PRESETS = sigmaserve.list_presets()
SET_TIMESTEPS_EXTRAS = ("timesteps", "sigmas", "mu", "strength")

# Float tolerances (schedules-diffusers.md §0): float32 values within ~2 ulp; float timesteps
# that pass through _sigma_to_t or float32 log/exp within 2e-6 relative or 2e-6 of the scale.
SIGMA_RTOL = 2.5e-7
TIMESTEP_RTOL = 2e-6


@dataclass(frozen=True)
class Case:
    """One configuration: a scheduler class, a step count, a preset, config and overrides."""

    scheduler: str
    steps: int | None
    preset: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return (
            f"{self.scheduler} n={self.steps} preset={self.preset} "
            f"config={dict(self.config)} overrides={dict(self.overrides)}"
        )


@dataclass
class Reference:
    """What the diffusers scheduler holds after set_timesteps."""

    timesteps: np.ndarray
    sigmas: np.ndarray | None
    init_noise_sigma: float
    betas: np.ndarray | None
    alphas_cumprod: np.ndarray | None
    config: dict[str, Any]
    num_inference_steps: int | None


def _numpy(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _init_keys(cls: type) -> set[str]:
    """The ``__init__`` parameters (diffusers' config also carries keys of compatible classes)."""
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def reference(case: Case) -> Reference:
    """Build the diffusers scheduler for ``case`` and call set_timesteps."""
    cls = getattr(diffusers, case.scheduler)
    merged: dict[str, Any] = {}
    if case.preset is not None:
        merged.update(PRESETS[case.preset]["config"])
    merged.update(case.config)
    merged.update({k: v for k, v in case.overrides.items() if k not in SET_TIMESTEPS_EXTRAS})
    scheduler = cls.from_config(merged)
    kwargs: dict[str, Any] = {}
    for key in ("timesteps", "sigmas", "mu"):
        if case.overrides.get(key) is not None:
            kwargs[key] = case.overrides[key]
    if case.scheduler == "EDMEulerScheduler" and "sigmas" in kwargs:
        kwargs["sigmas"] = torch.tensor(kwargs["sigmas"], dtype=torch.float64)
    scheduler.set_timesteps(case.steps, **kwargs)
    init = getattr(scheduler, "init_noise_sigma", 1.0)
    return Reference(
        timesteps=_numpy(scheduler.timesteps),
        sigmas=_numpy(getattr(scheduler, "sigmas", None)),
        init_noise_sigma=float(init),
        betas=_numpy(getattr(scheduler, "betas", None)),
        alphas_cumprod=_numpy(getattr(scheduler, "alphas_cumprod", None)),
        config={k: v for k, v in scheduler.config.items() if k in _init_keys(cls)},
        num_inference_steps=getattr(scheduler, "num_inference_steps", None),
    )


def ours(case: Case) -> sigmaserve.Schedule:
    return sigmaserve.get_schedule(
        case.scheduler,
        case.steps,
        preset=case.preset,
        config=dict(case.config),
        **case.overrides,
    )


@dataclass
class Tally:
    """Counts of what was compared and how exactly."""

    configs: int = 0
    errors_agreed: int = 0
    arrays_bit_equal: int = 0
    arrays_within_tolerance: int = 0
    failures: list[str] = field(default_factory=list)
    by_class: Counter[str] = field(default_factory=Counter)

    def merge(self, other: Tally) -> None:
        self.configs += other.configs
        self.errors_agreed += other.errors_agreed
        self.arrays_bit_equal += other.arrays_bit_equal
        self.arrays_within_tolerance += other.arrays_within_tolerance
        self.failures.extend(other.failures)
        self.by_class.update(other.by_class)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    if a.shape != b.shape:
        return False
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    both_nan = np.isnan(a64) & np.isnan(b64)
    ok = np.isclose(a64, b64, rtol=rtol, atol=atol) | both_nan
    return bool(ok.all())


def _compare_array(
    tally: Tally, name: str, mine: np.ndarray | None, theirs: np.ndarray | None, exact: bool, rtol: float
) -> str | None:
    if theirs is None or (theirs.size == 0 and (mine is None or mine.size == 0)):
        if mine is not None and mine.size and theirs is None:
            return f"{name}: diffusers has none, we have {mine.shape}"
        return None
    if mine is None:
        return f"{name}: missing (diffusers has {theirs.shape})"
    if mine.dtype != theirs.dtype:
        return f"{name}: dtype {mine.dtype} != diffusers {theirs.dtype}"
    if _same_bits(mine, theirs):
        tally.arrays_bit_equal += 1
        return None
    if exact or mine.shape != theirs.shape:
        return f"{name}: differs (ours {mine[:6]}... len {mine.size}, diffusers {theirs[:6]}... len {theirs.size})"
    scale = float(np.nanmax(np.abs(theirs.astype(np.float64)))) if theirs.size else 0.0
    if _close(mine, theirs, rtol, rtol * scale if np.isfinite(scale) else 0.0):
        tally.arrays_within_tolerance += 1
        return None
    worst = np.nanargmax(np.abs(mine.astype(np.float64) - theirs.astype(np.float64)))
    return f"{name}: beyond tolerance at [{worst}] ours {mine[worst]!r} diffusers {theirs[worst]!r}"


def _timesteps_exact(case: Case, theirs: np.ndarray) -> bool:
    """Integer timesteps, and float timesteps made only of spacing arithmetic, must be bit-equal."""
    if theirs.dtype.kind in "iu":
        return True
    merged = {**case.config, **case.overrides}
    derived = any(merged.get(k) for k in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"))
    derived |= merged.get("timestep_type") == "continuous" or "sigmas" in merged
    derived |= case.scheduler in {
        "KDPM2DiscreteScheduler",
        "KDPM2AncestralDiscreteScheduler",
        "DPMSolverSDEScheduler",
        "EDMEulerScheduler",
        "EDMDPMSolverMultistepScheduler",
        "FlowMatchEulerDiscreteScheduler",
        "FlowMatchHeunDiscreteScheduler",
    }
    return not derived


def _config_matches(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> str | None:
    for key, value in theirs.items():
        if key not in mine:
            return f"config: key {key!r} missing"
        mv = mine[key]
        if isinstance(value, (list, tuple, np.ndarray)):
            if list(np.asarray(value).tolist()) != list(mv or []):
                return f"config[{key!r}]: {mv!r} != diffusers {value!r}"
        elif isinstance(value, float) and isinstance(mv, (int, float)) and not isinstance(mv, bool):
            if not (mv == value or (math.isnan(mv) and math.isnan(value))):
                return f"config[{key!r}]: {mv!r} != diffusers {value!r}"
        elif mv != value:
            return f"config[{key!r}]: {mv!r} != diffusers {value!r}"
    extra = set(mine) - set(theirs)
    if extra:
        return f"config: keys diffusers lacks: {sorted(extra)}"
    return None


def compare(case: Case, tally: Tally, check_config: bool = True) -> None:
    """Compare one case; record a failure string on mismatch."""
    try:
        theirs: Reference | Exception = reference(case)
    except Exception as exc:  # diffusers signals bad input with many exception types
        theirs = exc
    try:
        mine: sigmaserve.Schedule | Exception = ours(case)
    except InvalidArgumentError as exc:
        mine = exc
    tally.configs += 1
    tally.by_class[case.scheduler] += 1
    if isinstance(theirs, Exception) or isinstance(mine, Exception):
        if isinstance(theirs, Exception) and isinstance(mine, Exception):
            tally.errors_agreed += 1
            return
        what = f"diffusers raised {theirs!r}" if isinstance(theirs, Exception) else f"we raised {mine!r}"
        tally.failures.append(f"{case.label()}: {what}")
        return
    problems = [
        _compare_array(tally, "timesteps", mine.timesteps, theirs.timesteps, _timesteps_exact(case, theirs.timesteps), TIMESTEP_RTOL),
        _compare_array(tally, "sigmas", mine.sigmas, theirs.sigmas, False, SIGMA_RTOL),
        _compare_array(tally, "betas", mine.betas, theirs.betas, False, SIGMA_RTOL),
        _compare_array(tally, "alphas_cumprod", mine.alphas_cumprod, theirs.alphas_cumprod, False, SIGMA_RTOL),
    ]
    if not math.isclose(mine.init_noise_sigma, theirs.init_noise_sigma, rel_tol=SIGMA_RTOL) and not (
        math.isnan(mine.init_noise_sigma) and math.isnan(theirs.init_noise_sigma)
    ):
        problems.append(f"init_noise_sigma {mine.init_noise_sigma!r} != {theirs.init_noise_sigma!r}")
    if theirs.num_inference_steps is not None and mine.num_inference_steps != theirs.num_inference_steps:
        problems.append(f"num_inference_steps {mine.num_inference_steps} != {theirs.num_inference_steps}")
    if check_config:
        problems.append(_config_matches(mine.config, theirs.config))
    problems = [p for p in problems if p]
    if problems:
        tally.failures.append(f"{case.label()}: " + "; ".join(problems))


def run(cases: Iterable[Case]) -> Tally:
    tally = Tally()
    for case in cases:
        compare(case, tally)
    return tally


def report(name: str, tally: Tally) -> None:
    print(
        f"\n[{name}] configurations compared: {tally.configs} "
        f"(errors agreed: {tally.errors_agreed}; arrays bit-equal: {tally.arrays_bit_equal}, "
        f"within tolerance: {tally.arrays_within_tolerance})"
    )
    TOTAL.merge(tally)
    assert not tally.failures, f"{len(tally.failures)} mismatches, first ones:\n" + "\n".join(
        tally.failures[:15]
    )


TOTAL = Tally()

# ---- the grid -------------------------------------------------------------------------------

AWKWARD_STEPS = (1, 2, 3, 4, 5, 7, 10, 13, 20, 25, 28, 30, 49, 50, 61, 99, 100, 103, 121, 122, 150)
FEW_STEPS = (1, 2, 7, 25, 61, 150)
SPACINGS = ({"timestep_spacing": "linspace"}, {"timestep_spacing": "leading", "steps_offset": 1},
            {"timestep_spacing": "leading"}, {"timestep_spacing": "trailing"})
VP_BETAS = (
    {"beta_schedule": "linear"},
    {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
    {"beta_schedule": "squaredcos_cap_v2"},
)
SIGMA_SPACES = ({}, {"use_karras_sigmas": True}, {"use_exponential_sigmas": True}, {"use_beta_sigmas": True})


def grid(*axes: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every combination of the option dicts on each axis, merged."""
    for combo in itertools.product(*axes):
        merged: dict[str, Any] = {}
        for part in combo:
            merged.update(part)
        yield merged


def k_diffusion_cases() -> Iterator[Case]:
    """LMS and Euler over betas x spacing x sigma space x steps (the foundation slice)."""
    for scheduler in ("LMSDiscreteScheduler", "EulerDiscreteScheduler"):
        for overrides in grid(VP_BETAS, SPACINGS, SIGMA_SPACES):
            for steps in FEW_STEPS:
                yield Case(scheduler, steps, overrides=overrides)


def test_foundation_presets_every_step_count() -> None:
    cases = (
        Case(scheduler, steps, preset=preset)
        for scheduler in ("LMSDiscreteScheduler", "EulerDiscreteScheduler")
        for preset in ("sd15", "sdxl")
        for steps in range(1, 151)
    )
    report("foundation presets", run(cases))


def test_foundation_options() -> None:
    report("foundation options", run(k_diffusion_cases()))
