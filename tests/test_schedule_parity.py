"""Parity of sigmaserve.get_schedule with the installed diffusers, computed at run time.

Every configuration is built twice: ``DiffusersClass.from_config(preset < config < overrides)``
followed by ``set_timesteps(...)``, and ``sigmaserve.get_schedule(...)`` with the same inputs.
Timesteps must be equal in value and dtype (integer timesteps and spacing-only float timesteps
bit-equal; timesteps that pass through float32 transcendental functions within the tolerances of
schedules-diffusers.md §0); sigmas, betas, alphas_cumprod and init_noise_sigma within 2 float32
ulp; errors must agree (both raise or neither). The number of configurations compared is printed.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
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
# set_timesteps arguments (not config): the common ones and those of single classes.
SET_TIMESTEPS_EXTRAS = (
    "timesteps",
    "sigmas",
    "mu",
    "strength",
    "max_timesteps",
    "intermediate_timesteps",
    "jump_length",
    "jump_n_sample",
    "stage_index",
    "is_amplify_first_chunk",
    "start_time",
)
# Passed to set_timesteps when the case gives them (``strength`` is the img2img pipeline's,
# except for LCM/TCD); for SCM's two, an explicit None differs from the default.
PASSED_EXTRAS = tuple(k for k in SET_TIMESTEPS_EXTRAS if k != "strength")
NONE_IS_A_VALUE = ("max_timesteps", "intermediate_timesteps")

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


def _merged_config(case: Case) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    if case.preset is not None:
        merged.update(PRESETS[case.preset]["config"])
    merged.update(case.config)
    merged.update({k: v for k, v in case.overrides.items() if k not in SET_TIMESTEPS_EXTRAS})
    return merged


@contextlib.contextmanager
def _short_init_set_timesteps(cls: type) -> Iterator[None]:
    """LMS, Heun, KDPM2, KDPM2A and DPM-SDE call ``set_timesteps(num_train_timesteps)`` inside
    ``__init__`` (2 s for KDPM2). Every array is recomputed by the ``set_timesteps`` call the test
    makes next, so during construction that call runs with 2 steps instead."""
    original = cls.set_timesteps

    def short(self: Any, num_inference_steps: Any = None, *args: Any, **kwargs: Any) -> Any:
        steps = 2 if isinstance(num_inference_steps, int) else num_inference_steps
        return original(self, steps, *args, **kwargs)

    cls.set_timesteps = short
    try:
        yield
    finally:
        cls.set_timesteps = original


class SchedulerCache:
    """One diffusers scheduler per (class, config): set_timesteps is called again for each step
    count, as a pipeline reusing its scheduler would. The config comparison uses fresh instances
    only, because DPMSolverSinglestep rewrites its config inside set_timesteps."""

    def __init__(self) -> None:
        self._instances: dict[str, Any] = {}

    def get(self, case: Case) -> tuple[Any, bool]:
        cls = scheduler_class(case.scheduler)
        merged = _merged_config(case)
        key = f"{case.scheduler}|{sorted(merged.items(), key=lambda kv: kv[0])!r}"
        fresh = key not in self._instances
        if fresh:
            try:
                with _short_init_set_timesteps(cls):
                    self._instances[key] = cls.from_config(merged)
            except Exception as exc:  # construction errors are cached too
                self._instances[key] = exc
        instance = self._instances[key]
        if isinstance(instance, Exception):
            raise instance
        return instance, fresh


CACHE = SchedulerCache()


def scheduler_class(name: str) -> type:
    """The diffusers class (ConsistencyDecoder and ScoreSdeVp are only in diffusers.schedulers)."""
    return getattr(diffusers.schedulers, name)


def reference(case: Case) -> tuple[Reference, bool]:
    """Build (or reuse) the diffusers scheduler for ``case`` and call set_timesteps."""
    scheduler, fresh = CACHE.get(case)
    kwargs: dict[str, Any] = {}
    for key in PASSED_EXTRAS:
        if key in case.overrides and (case.overrides[key] is not None or key in NONE_IS_A_VALUE):
            kwargs[key] = case.overrides[key]
    if case.scheduler == "EDMEulerScheduler" and "sigmas" in kwargs:
        kwargs["sigmas"] = torch.tensor(kwargs["sigmas"], dtype=torch.float64)
    if case.scheduler == "UniPCMultistepScheduler" and "sigmas" in kwargs:
        kwargs["sigmas"] = np.asarray(kwargs["sigmas"])  # UniPC multiplies them by a float
    if case.scheduler.startswith("Helios") and "sigmas" in kwargs:
        kwargs["sigmas"] = np.asarray(kwargs["sigmas"], dtype=np.float32)  # it scales them by N
    if case.scheduler in ("LCMScheduler", "TCDScheduler") and "strength" in case.overrides:
        kwargs["strength"] = case.overrides["strength"]
    steps = case.steps
    if case.scheduler == "SCMScheduler" and steps is None and "timesteps" in kwargs:
        steps = len(kwargs["timesteps"]) - 1  # upstream needs the count; sigmaserve infers it
    scheduler.set_timesteps(steps, **kwargs)
    sigmas = getattr(scheduler, "sigmas", None)
    if case.scheduler == "ScoreSdeVeScheduler":
        scheduler.set_sigmas(case.steps)  # what its pipeline calls after set_timesteps
        sigmas = scheduler.sigmas
    if case.scheduler == "KarrasVeScheduler":
        sigmas = scheduler.schedule  # the values its pipeline reads as sigma
    init = getattr(scheduler, "init_noise_sigma", 1.0)
    return (
        Reference(
            timesteps=_numpy(scheduler.timesteps),
            sigmas=_numpy(sigmas),
            init_noise_sigma=float(init),
            betas=_numpy(getattr(scheduler, "betas", None)),
            alphas_cumprod=_numpy(getattr(scheduler, "alphas_cumprod", None)),
            config=reference_config(scheduler),
            num_inference_steps=getattr(scheduler, "num_inference_steps", None),
        ),
        fresh,
    )


def reference_config(scheduler: Any) -> dict[str, Any]:
    """``scheduler.config`` restricted to the ``__init__`` keys. LTXEulerAncestralRF builds a
    FlowMatchEulerDiscreteScheduler from its own config in set_timesteps, so its flow-matching
    keys are those that scheduler resolves."""
    cls = type(scheduler)
    config = {k: v for k, v in scheduler.config.items() if k in _init_keys(cls)}
    if cls.__name__ == "LTXEulerAncestralRFScheduler":
        delegate = diffusers.FlowMatchEulerDiscreteScheduler.from_config(scheduler.config)
        inherited = _init_keys(type(delegate)) - {"num_train_timesteps"}
        config.update({k: v for k, v in delegate.config.items() if k in inherited})
    return config


def ours(case: Case) -> sigmaserve.Schedule:
    """The bare ``from_config`` + ``set_timesteps`` (``pipeline=False``): this suite compares
    scheduler classes; tests/test_pipelines.py compares the pipelines."""
    return sigmaserve.get_schedule(
        case.scheduler,
        case.steps,
        preset=case.preset,
        pipeline=False,
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


def _close(a: np.ndarray, b: np.ndarray, rtol: Any, atol: Any) -> bool:
    if a.shape != b.shape:
        return False
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    both_nan = np.isnan(a64) & np.isnan(b64)
    undetermined = np.isinf(np.broadcast_to(atol, a64.shape))
    ok = (
        np.isclose(a64, b64, rtol=rtol, atol=np.where(undetermined, 0.0, atol))
        | both_nan
        | undetermined
    )
    return bool(ok.all())


def _compare_array(
    tally: Tally,
    name: str,
    mine: np.ndarray | None,
    theirs: np.ndarray | None,
    exact: bool,
    rtol: float | np.ndarray,
    atol: float | np.ndarray | None = None,
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
        return (
            f"{name}: differs (ours {mine[:6]}... len {mine.size}, "
            f"diffusers {theirs[:6]}... len {theirs.size})"
        )
    if atol is None:
        scale = float(np.nanmax(np.abs(theirs.astype(np.float64)))) if theirs.size else 0.0
        atol = TIMESTEP_RTOL * scale if np.isfinite(scale) else 0.0
    if _close(mine, theirs, rtol, atol):
        tally.arrays_within_tolerance += 1
        return None
    worst = np.nanargmax(np.abs(mine.astype(np.float64) - theirs.astype(np.float64)))
    return f"{name}: beyond tolerance at [{worst}] ours {mine[worst]!r} diffusers {theirs[worst]!r}"


ULP = 2.0**-24


def zero_snr_tolerances(ref: Reference) -> dict[str, np.ndarray]:
    """Tolerances for rescale_betas_zero_snr arrays (first-order error propagation).

    The rescale takes torch float32 ``sqrt(alphas_cumprod)``, which is not correctly rounded on
    x86 torch (1 ulp; schedules-diffusers.md §0), subtracts the terminal value and squares:

    * ``alphas_bar_i`` carries a relative error of about ``2 ulp / (s_i - s_T)``, and
      ``s_i - s_T`` is proportional to ``sqrt(alphas_cumprod_i)`` after the rescale;
    * each ratio ``alphas_bar_i / alphas_bar_{i-1}`` may therefore differ by a few ulp, so
      ``betas = 1 - ratio`` differs by that much in absolute terms, and ``cumprod`` of i such
      ratios accumulates up to ``2 i`` ulp;
    * ``sigma = sqrt((1 - acp) / acp)`` turns a relative error r of acp into
      ``r (1 + sigma^2) / (2 sigma^2)``.

    The bounds below are these terms with a factor 4 of margin.
    """
    acp = np.maximum(ref.alphas_cumprod.astype(np.float64), ULP)
    index = np.arange(acp.size)
    rel_bar = 8 * ULP / np.sqrt(acp)
    rel_acp = SIGMA_RTOL + rel_bar + 8 * ULP * (index + 1)
    beta_abs = 4 * (rel_bar + np.concatenate([[0.0], rel_bar[:-1]])) + 4 * ULP
    out = {"alphas_cumprod": rel_acp, "betas": beta_abs}
    if ref.sigmas is not None:
        train = np.sqrt((1 - acp) / acp)
        sig = np.maximum(ref.sigmas.astype(np.float64), 1e-12)
        where = np.interp(sig, train, index)
        r_acp = np.interp(where, index, rel_acp)
        out["sigmas"] = SIGMA_RTOL + 2 * r_acp * (1 + sig * sig) / (sig * sig)
    return out


def kdpm2_ancestral_atol(ref: Reference, mine: sigmaserve.Schedule) -> np.ndarray | None:
    """Tolerance of KDPM2Ancestral's interpolated timesteps.

    They come from ``sigma_down = sqrt(s_next^2 - sigma_up^2)``, a difference of two nearly
    equal float32 numbers whose relative error is about ``ulp * (s / s_next)^2``; a 1-ulp
    difference in a training sigma (torch's float32 sqrt) is amplified by that factor, then
    halved twice (lerp of logs) and mapped to a timestep by the local slope of log sigma.
    """
    if ref.sigmas is None or ref.timesteps.size < 3:
        return None
    s = ref.sigmas.astype(np.float64)[::2]  # s_0, s_1, ..., s_n (each once)
    ls = np.log(
        np.maximum(((1 - ref.alphas_cumprod.astype(np.float64)) / ref.alphas_cumprod) ** 0.5, 1e-10)
    )
    slope = np.maximum(np.diff(ls), 1e-6)
    atol = np.full(ref.timesteps.shape, TIMESTEP_RTOL * 1000.0)
    for j in range(1, ref.timesteps.size, 2):
        i = (j - 1) // 2
        if i + 1 >= s.size or s[i + 1] <= 0:
            continue
        amp = (s[i] / s[i + 1]) ** 2
        if amp * ULP > 1e-2:
            atol[j] = (
                np.inf
            )  # the cancellation leaves no correct digit (NaN on one side is possible)
            continue
        dlog = 4 * ULP * amp + 4 * ULP
        if not np.isfinite(ref.timesteps[j]):
            atol[j] = np.inf
            continue
        k = int(np.clip(np.floor(ref.timesteps[j]), 0, slope.size - 1))
        atol[j] += dlog / slope[k] * 4
    return atol


def _timesteps_exact(case: Case, theirs: np.ndarray) -> bool:
    """Integer timesteps, and float timesteps made only of spacing arithmetic, must be bit-equal."""
    if theirs.dtype.kind in "iu":
        return True
    merged = {**case.config, **case.overrides}
    derived = any(
        merged.get(k) for k in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")
    )
    derived |= merged.get("timestep_type") == "continuous" or "sigmas" in merged
    derived |= case.scheduler in {
        "KDPM2DiscreteScheduler",
        "KDPM2AncestralDiscreteScheduler",
        "DPMSolverSDEScheduler",
        "EDMEulerScheduler",
        "EDMDPMSolverMultistepScheduler",
        "FlowMatchEulerDiscreteScheduler",
        "FlowMatchHeunDiscreteScheduler",
        # Added for issue 14: timesteps through transcendental functions that are not correctly
        # rounded upstream (numpy's SIMD float64 log; torch's float32 atan, sin and atan2).
        "CMStochasticIterativeScheduler",
        "CosineDPMSolverMultistepScheduler",
        "IPNDMScheduler",
    }
    return not derived


def karras_f32_rtol(case: Case, ref: Reference) -> float | np.ndarray:
    """EDMDPMSolverMultistep and CosineDPMSolverMultistep raise a float32 tensor to ``rho``.
    torch computes whole vector chunks with the exponent rounded to float32 and the remainder
    with the float64 exponent (how many of each depends on the CPU's vector width), so for a
    ``rho`` that float32 cannot hold exactly, ``sigma = x ** rho`` may differ by
    ``|ln sigma| * 2**-24`` relative (``d(x**rho) / x**rho = ln(x) * d(rho)``)."""
    merged = {**_merged_config(case)}
    karras = merged.get("sigma_schedule", "karras" if case.scheduler.startswith("EDM") else None)
    if case.scheduler not in (
        "EDMDPMSolverMultistepScheduler",
        "CosineDPMSolverMultistepScheduler",
    ):
        return SIGMA_RTOL
    if karras != "karras" or ref.sigmas is None:
        return SIGMA_RTOL
    sig = np.abs(ref.sigmas.astype(np.float64))
    return SIGMA_RTOL + np.abs(np.log(np.where(sig > 0, sig, 1.0))) * ULP


def betas_rtol(case: Case) -> float:
    """IPNDM's ``betas`` are ``sin(x) ** 2`` with torch's float32 sin (within 1 ulp, not
    correctly rounded): a relative error up to 2**-23 in sin doubles when squared (4 ULP), and
    the two sides round their squares independently (up to one result ulp, 2 ULP)."""
    if case.scheduler == "IPNDMScheduler":
        return 6 * ULP
    return SIGMA_RTOL


def endpoint_atol(case: Case, theirs: np.ndarray) -> np.ndarray | None:
    """DPMSolverMultistepInverse with exponential sigmas truncates ``_sigma_to_t`` of its last
    sigma, ``exp(log(sigma_max))``, which lands within an ulp of the last training timestep:
    numpy's SIMD float64 exp (which differs from libm's in ~5% of inputs on AVX-512) decides
    whether it truncates to ``N - 1`` or ``N - 2``. That one element may differ by 1."""
    merged = {**case.config, **case.overrides}
    if case.scheduler != "DPMSolverMultistepInverseScheduler" or not merged.get(
        "use_exponential_sigmas"
    ):
        return None
    atol = np.zeros(theirs.shape)
    atol[-1:] = 1.0
    return atol


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


def compare(case: Case, tally: Tally) -> None:
    """Compare one case; record a failure string on mismatch."""
    check_config = False
    try:
        theirs: Reference | Exception
        theirs, check_config = reference(case)
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
        what = (
            f"diffusers raised {theirs!r}"
            if isinstance(theirs, Exception)
            else f"we raised {mine!r}"
        )
        tally.failures.append(f"{case.label()}: {what}")
        return
    merged = {**_merged_config(case)}
    zero_snr = bool(merged.get("rescale_betas_zero_snr")) and theirs.alphas_cumprod is not None
    tol = zero_snr_tolerances(theirs) if zero_snr else {}
    t_atol = (
        kdpm2_ancestral_atol(theirs, mine)
        if case.scheduler == "KDPM2AncestralDiscreteScheduler"
        else endpoint_atol(case, theirs.timesteps)
    )
    problems = [
        _compare_array(
            tally,
            "timesteps",
            mine.timesteps,
            theirs.timesteps,
            _timesteps_exact(case, theirs.timesteps) and t_atol is None,
            TIMESTEP_RTOL,
            t_atol,
        ),
        _compare_array(
            tally,
            "sigmas",
            mine.sigmas,
            theirs.sigmas,
            False,
            tol.get("sigmas", karras_f32_rtol(case, theirs)),
            0.0,
        ),
        _compare_array(
            tally,
            "betas",
            mine.betas,
            theirs.betas,
            False,
            0.0 if zero_snr else betas_rtol(case),
            tol.get("betas", 0.0),
        ),
        _compare_array(
            tally,
            "alphas_cumprod",
            mine.alphas_cumprod,
            theirs.alphas_cumprod,
            False,
            tol.get("alphas_cumprod", SIGMA_RTOL),
            0.0,
        ),
    ]
    init_rtol = float(np.max(tol["sigmas"])) if "sigmas" in tol else SIGMA_RTOL
    if not math.isclose(mine.init_noise_sigma, theirs.init_noise_sigma, rel_tol=init_rtol) and not (
        math.isnan(mine.init_noise_sigma) and math.isnan(theirs.init_noise_sigma)
    ):
        problems.append(
            f"init_noise_sigma {mine.init_noise_sigma!r} != {theirs.init_noise_sigma!r}"
        )
    if (
        check_config
        and theirs.num_inference_steps is not None
        and mine.num_inference_steps != theirs.num_inference_steps
    ):
        problems.append(
            f"num_inference_steps {mine.num_inference_steps} != {theirs.num_inference_steps}"
        )
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


OUTPUT: list[Any] = []  # (capture manager, terminal reporter), set by the fixture below


def say(line: str) -> None:
    """Print past pytest's capture, so counts show in a plain ``make test`` run."""
    if not OUTPUT:
        print(line)
        return
    capture, reporter = OUTPUT[0]
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


def report(name: str, tally: Tally) -> None:
    say(
        f"[schedule parity: {name}] configurations compared: {tally.configs} "
        f"(errors agreed: {tally.errors_agreed}; arrays bit-equal: {tally.arrays_bit_equal}, "
        f"within tolerance: {tally.arrays_within_tolerance})"
    )
    TOTAL.merge(tally)
    REPORTS[0] += 1
    assert not tally.failures, f"{len(tally.failures)} mismatches, first ones:\n" + "\n".join(
        tally.failures[:15]
    )


TOTAL = Tally()
REPORTS = [0]
GRID_TESTS = 10  # the tests below that call report()

# ---- the grid -------------------------------------------------------------------------------

ALL_CLASSES = sigmaserve.schedules.list_schedulers()
FAMILIES = sigmaserve.schedules.scheduler_families()
VP_CLASSES = tuple(c for c in ALL_CLASSES if not c.startswith(("EDM", "FlowMatch")))
FLOW_PRESETS = ("sd3", "sd35", "flux-dev", "flux-schnell")
AWKWARD_STEPS = (1, 2, 3, 4, 5, 7, 10, 13, 20, 25, 28, 30, 49, 50, 61, 99, 100, 103, 121, 122, 150)
FEW_STEPS = (1, 2, 7, 25, 61, 150)
SPACINGS = (
    {"timestep_spacing": "linspace"},
    {"timestep_spacing": "leading", "steps_offset": 1},
    {"timestep_spacing": "leading"},
    {"timestep_spacing": "trailing"},
)
VP_BETAS = (
    {"beta_schedule": "linear"},
    {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
    {"beta_schedule": "squaredcos_cap_v2"},
)
TRAINED = ({"trained_betas": np.linspace(1e-4, 0.02, 1000).tolist()},)
KEB = ({"use_karras_sigmas": True}, {"use_exponential_sigmas": True}, {"use_beta_sigmas": True})
SIGMA_SPACES = ({}, *KEB)
FINALS = ({"final_sigmas_type": "zero"}, {"final_sigmas_type": "sigma_min"})
ZERO_SNR = ({}, {"rescale_betas_zero_snr": True})


def grid(*axes: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every combination of the option dicts on each axis, merged."""
    for combo in itertools.product(*axes):
        merged: dict[str, Any] = {}
        for part in combo:
            merged.update(part)
        yield merged


def cases_for(
    scheduler: str, option_sets: Iterable[Mapping[str, Any]], steps: Iterable[int] = FEW_STEPS
) -> Iterator[Case]:
    steps = tuple(steps)
    for overrides in option_sets:
        for n in steps:
            yield Case(scheduler, n, overrides=dict(overrides))


def family_a_cases() -> Iterator[Case]:
    for scheduler in (
        "LMSDiscreteScheduler",
        "KDPM2DiscreteScheduler",
        "KDPM2AncestralDiscreteScheduler",
        "DPMSolverSDEScheduler",
    ):
        yield from cases_for(scheduler, grid(VP_BETAS + TRAINED, SPACINGS, SIGMA_SPACES))
    yield from cases_for(
        "HeunDiscreteScheduler",
        grid((*VP_BETAS, {"beta_schedule": "exp"}), SPACINGS, SIGMA_SPACES),
    )
    yield from cases_for("EulerAncestralDiscreteScheduler", grid(VP_BETAS, SPACINGS, ZERO_SNR))
    euler = "EulerDiscreteScheduler"
    yield from cases_for(euler, grid(VP_BETAS + TRAINED, SPACINGS, SIGMA_SPACES, FINALS))
    yield from cases_for(
        euler,
        grid(VP_BETAS[1:2], SPACINGS, ZERO_SNR, FINALS, ({"interpolation_type": "log_linear"}, {})),
    )
    yield from cases_for(
        euler,
        grid(
            SPACINGS,
            ({"timestep_type": "continuous", "prediction_type": "v_prediction"},),
            ({}, {"use_karras_sigmas": True}),
        ),
    )
    yield from cases_for(
        euler,
        grid(VP_BETAS[1:2], KEB, ({"sigma_min": 0.1, "sigma_max": 10.0}, {"sigma_max": 20.0})),
    )


def family_b_cases() -> Iterator[Case]:
    flow = ({"use_flow_sigmas": True, "flow_shift": 3.0, "prediction_type": "flow_prediction"},)
    dpm = "DPMSolverMultistepScheduler"
    spaces = (*SIGMA_SPACES, {"use_lu_lambdas": True}, *flow)
    yield from cases_for(dpm, grid(VP_BETAS, SPACINGS, spaces, FINALS))
    yield from cases_for(dpm, grid(VP_BETAS[1:2], ZERO_SNR[1:], SPACINGS, FINALS))
    yield from cases_for(
        dpm,
        grid(
            VP_BETAS[2:],
            ({"lambda_min_clipped": -5.1},),
            SPACINGS,
            ({}, {"use_karras_sigmas": True}),
        ),
    )
    yield from cases_for(
        dpm,
        grid(
            (
                {"algorithm_type": a}
                for a in ("dpmsolver", "sde-dpmsolver", "sde-dpmsolver++", "deis")
            ),
            FINALS,
            ({}, {"solver_type": "bh2"}),
        ),
        (1, 25),
    )
    yield from cases_for(
        dpm,
        grid(
            flow,
            ({"use_dynamic_shifting": True, "mu": 0.5}, {"use_dynamic_shifting": True, "mu": 1.15}),
        ),
        (1, 7, 28),
    )
    single = "DPMSolverSinglestepScheduler"
    yield from cases_for(single, grid(VP_BETAS, SIGMA_SPACES + flow, FINALS))
    yield from cases_for(
        single,
        grid(
            ({"solver_order": o} for o in (1, 2, 3)),
            ({"lower_order_final": True}, {"lower_order_final": False}),
            FINALS,
        ),
        (1, 2, 3, 7, 24, 25),
    )
    yield from cases_for(single, grid(VP_BETAS[2:], ({"lambda_min_clipped": -5.1},)), (7, 25))
    unipc = "UniPCMultistepScheduler"
    yield from cases_for(unipc, grid(VP_BETAS, SPACINGS, SIGMA_SPACES, FINALS))
    yield from cases_for(unipc, grid(VP_BETAS[1:2], ZERO_SNR[1:], SPACINGS))
    yield from cases_for(unipc, grid(VP_BETAS[1:2], KEB, ({"sigma_min": 0.05, "sigma_max": 12.0},)))
    uflow = ({"use_flow_sigmas": True, "prediction_type": "flow_prediction"},)
    yield from cases_for(
        unipc,
        grid(
            uflow,
            ({"flow_shift": 1.0}, {"flow_shift": 3.0}, {"flow_shift": 5.0, "shift_terminal": 0.1}),
            FINALS,
            ({}, {"use_karras_sigmas": True}),
        ),
    )
    yield from cases_for(
        unipc,
        grid(
            uflow,
            (
                {"use_dynamic_shifting": True, "mu": 0.8},
                {"use_dynamic_shifting": True, "mu": 1.15, "time_shift_type": "linear"},
            ),
        ),
        (1, 7, 28, 50),
    )
    for name in ("DEISMultistepScheduler", "SASolverScheduler"):
        yield from cases_for(name, grid(VP_BETAS, SPACINGS, SIGMA_SPACES + flow))
    yield from cases_for(
        "SASolverScheduler", grid(VP_BETAS[2:], ({"lambda_min_clipped": -5.1},), SPACINGS)
    )
    yield from cases_for(
        "DEISMultistepScheduler", grid(flow, ({"use_dynamic_shifting": True, "mu": 0.7},)), (7, 25)
    )


def family_c_cases() -> Iterator[Case]:
    yield from cases_for(
        "DDIMScheduler",
        grid(VP_BETAS + TRAINED, SPACINGS, ZERO_SNR, ({}, {"set_alpha_to_one": False})),
    )
    ddpm_betas = (*VP_BETAS, {"beta_schedule": "sigmoid"}, {"beta_schedule": "laplace"})
    yield from cases_for("DDPMScheduler", grid(ddpm_betas, SPACINGS, ZERO_SNR))
    yield from cases_for(
        "PNDMScheduler",
        grid(VP_BETAS, SPACINGS, ({"skip_prk_steps": True}, {"skip_prk_steps": False})),
    )
    lcm_steps = (1, 2, 4, 8, 25, 50, 61)
    for name in ("LCMScheduler", "TCDScheduler"):
        yield from cases_for(
            name,
            grid(VP_BETAS, ZERO_SNR, ({"original_inference_steps": o} for o in (50, 25, 100))),
            lcm_steps,
        )
        yield from cases_for(
            name,
            grid(
                ({"strength": s} for s in (0.3, 0.5, 0.75)),
            ),
            (1, 2, 4, 8),
        )


def edm_and_flow_cases() -> Iterator[Case]:
    for name in ("EDMEulerScheduler", "EDMDPMSolverMultistepScheduler"):
        yield from cases_for(
            name,
            grid(
                ({"sigma_schedule": "karras"}, {"sigma_schedule": "exponential"}),
                FINALS,
                (
                    {},
                    {"sigma_min": 0.002, "sigma_max": 700.0},
                    {"sigma_min": 0.03, "sigma_max": 14.6},
                ),
                ({}, {"rho": 5.0}),
            ),
        )
    fm = "FlowMatchEulerDiscreteScheduler"
    yield from cases_for(
        fm,
        grid(
            ({"shift": 1.0}, {"shift": 3.0}, {"shift": 6.0}),
            SIGMA_SPACES,
            ({}, {"invert_sigmas": True}, {"shift_terminal": 0.02}),
        ),
    )
    dyn = (
        {"use_dynamic_shifting": True, "mu": m, "time_shift_type": t}
        for m in (0.5, 1.15)
        for t in ("exponential", "linear")
    )
    yield from cases_for(
        fm,
        grid(tuple(dyn), ({}, {"use_karras_sigmas": True}, {"shift_terminal": 0.1})),
        (1, 4, 28, 50),
    )
    for n in (1, 4, 20, 28, 50):
        flux_sigmas = np.linspace(1.0, 1.0 / n, n).tolist()
        for mu in (0.5, 1.15):
            yield Case(fm, None, preset="flux-dev", overrides={"sigmas": flux_sigmas, "mu": mu})
        yield Case(fm, None, preset="sd3", overrides={"sigmas": flux_sigmas})
        yield Case(
            fm,
            None,
            preset="sd3",
            overrides={"timesteps": (np.asarray(flux_sigmas) * 1000).tolist()},
        )
    yield from cases_for("FlowMatchHeunDiscreteScheduler", ({"shift": s} for s in (1.0, 3.0, 6.0)))


def custom_array_cases() -> Iterator[Case]:
    desc = [999, 850, 700, 500, 300, 120, 20]
    floats = [999.0, 900.5, 700.25, 450.0, 200.0, 50.5, 0.0]
    sig = [14.6, 9.0, 4.0, 2.0, 0.9, 0.3, 0.05, 0.0]
    for preset in ("sd15", "sdxl", None):
        yield Case("DDPMScheduler", None, preset=preset, overrides={"timesteps": desc})
        yield Case(
            "DPMSolverMultistepScheduler", None, preset=preset, overrides={"timesteps": desc}
        )
        yield Case(
            "DPMSolverSinglestepScheduler", None, preset=preset, overrides={"timesteps": desc}
        )
        yield Case("EulerDiscreteScheduler", None, preset=preset, overrides={"timesteps": floats})
        yield Case("EulerDiscreteScheduler", None, preset=preset, overrides={"sigmas": sig})
        yield Case("HeunDiscreteScheduler", None, preset=preset, overrides={"timesteps": floats})
        yield Case(
            "LCMScheduler", None, preset=preset, overrides={"timesteps": [999, 759, 499, 259]}
        )
        yield Case(
            "EDMEulerScheduler",
            None,
            preset=preset,
            overrides={"sigmas": [0.0, 0.2, 0.5, 0.9, 1.0]},
        )
        yield Case(
            "UniPCMultistepScheduler",
            None,
            preset=preset,
            overrides={"use_flow_sigmas": True, "sigmas": [1.0, 0.8, 0.5, 0.2, 0.05]},
        )
        yield Case(
            "UniPCMultistepScheduler",
            None,
            preset=preset,
            overrides={
                "use_flow_sigmas": True,
                "use_karras_sigmas": True,
                "sigmas": [1.0, 0.8, 0.5, 0.2],
            },
        )


def error_cases() -> Iterator[Case]:
    """Inputs diffusers refuses: both sides must raise."""
    yield Case("DDIMScheduler", 1001)
    yield Case("DDPMScheduler", 2000)
    yield Case("LCMScheduler", 51)
    yield Case("PNDMScheduler", 3, overrides={"skip_prk_steps": False})
    yield Case(
        "EulerDiscreteScheduler", 10, overrides={"use_karras_sigmas": True, "use_beta_sigmas": True}
    )
    yield Case(
        "DPMSolverMultistepScheduler",
        10,
        overrides={"algorithm_type": "dpmsolver", "final_sigmas_type": "zero"},
    )
    yield Case("FlowMatchEulerDiscreteScheduler", 10, preset="flux-dev")
    yield Case("UniPCMultistepScheduler", 10, overrides={"shift_terminal": 0.1})
    yield Case(
        "EulerDiscreteScheduler",
        None,
        overrides={"timesteps": [900.0, 500.0], "use_karras_sigmas": True},
    )
    yield Case(
        "DPMSolverMultistepScheduler",
        None,
        overrides={"timesteps": [900, 500], "use_lu_lambdas": True},
    )
    yield Case("DDPMScheduler", None, overrides={"timesteps": [10, 500]})
    yield Case("DDPMScheduler", None, overrides={"timesteps": [1000, 500]})
    yield Case("UniPCMultistepScheduler", None, overrides={"sigmas": [1.0, 0.5]})
    yield Case("DEISMultistepScheduler", 10, overrides={"mu": 1.0})
    yield Case("EDMDPMSolverMultistepScheduler", 10, overrides={"algorithm_type": "deis"})


def preset_cases() -> Iterator[Case]:
    for preset in PRESETS:
        extras = {"mu": 1.15} if preset == "flux-dev" else {}
        for scheduler in ALL_CLASSES:
            for n in AWKWARD_STEPS:
                yield Case(scheduler, n, preset=preset, overrides=dict(extras))


def sweep_cases() -> Iterator[Case]:
    for scheduler in ALL_CLASSES:
        for n in range(1, 151):
            yield Case(scheduler, n)


@pytest.fixture(scope="module", autouse=True)
def _terminal(request: pytest.FixtureRequest) -> Iterator[None]:
    plugins = request.config.pluginmanager
    capture = plugins.getplugin("capturemanager")
    reporter = plugins.getplugin("terminalreporter")
    if capture is not None and reporter is not None:
        OUTPUT.append((capture, reporter))
    yield
    OUTPUT.clear()


@pytest.fixture(scope="module", autouse=True)
def _fast_scipy_ppf() -> Iterator[None]:
    """Memoise scipy.stats.beta.ppf (a pure function diffusers calls once per scalar)."""
    import functools

    import scipy.stats

    original = scipy.stats.beta.ppf
    cached = functools.lru_cache(maxsize=None)(lambda q, a, b: original(q, a, b))
    scipy.stats.beta.ppf = lambda q, a, b: cached(float(q), float(a), float(b))
    yield
    scipy.stats.beta.ppf = original


def test_every_class_every_step_count() -> None:
    """Class defaults, n = 1..150, every class."""
    report("step sweep", run(sweep_cases()))


def test_presets() -> None:
    """Every preset with every class at the awkward step counts."""
    report("presets", run(preset_cases()))


def test_family_a_options() -> None:
    report("k-diffusion family options", run(family_a_cases()))


def test_family_b_options() -> None:
    report("multistep family options", run(family_b_cases()))


def test_family_c_options() -> None:
    report("DDIM/DDPM/PNDM/LCM/TCD options", run(family_c_cases()))


def test_edm_and_flow_options() -> None:
    report("EDM and flow-matching options", run(edm_and_flow_cases()))


def test_custom_arrays() -> None:
    report("custom timesteps and sigmas", run(custom_array_cases()))


def test_errors_agree() -> None:
    tally = run(error_cases())
    report("refused inputs", tally)
    assert tally.errors_agreed == tally.configs


def img2img_reference(case: Case, strength: float) -> tuple[np.ndarray, int]:
    """The pipeline's own ``get_timesteps`` (SD img2img, or SD3 img2img for flow matching) run on
    the diffusers scheduler: the truncated timesteps and the begin index it sets."""
    from diffusers import StableDiffusion3Img2ImgPipeline, StableDiffusionImg2ImgPipeline

    scheduler, _ = CACHE.get(case)
    scheduler.set_timesteps(case.steps)
    flow = FAMILIES[case.scheduler] == "flow_match"
    pipeline = StableDiffusion3Img2ImgPipeline if flow else StableDiffusionImg2ImgPipeline
    holder = type("Holder", (), {})()
    holder.scheduler = scheduler
    timesteps, _ = pipeline.get_timesteps(holder, case.steps, strength, "cpu")
    return _numpy(timesteps), getattr(scheduler, "begin_index", None)


def test_img2img_strength() -> None:
    """begin_index and the start timestep equal what the diffusers img2img pipelines compute."""
    tally = Tally()
    # LCM/TCD take strength in set_timesteps; the pipelines read `scheduler.order`, which
    # UnCLIP and DDPMWuerstchen do not define (no img2img pipeline uses them).
    classes = [
        c
        for c in ALL_CLASSES
        if c not in ("LCMScheduler", "TCDScheduler") and hasattr(scheduler_class(c), "order")
    ]
    for scheduler, n, strength in itertools.product(
        classes, (1, 7, 25, 28, 50), (0.0, 0.3, 0.6, 0.75, 1.0)
    ):
        preset = "sd3" if FAMILIES[scheduler] == "flow_match" else "sd15"
        case = Case(scheduler, n, preset=preset, overrides={"strength": strength})
        tally.configs += 1
        tally.by_class[scheduler] += 1
        try:
            expected, begin = img2img_reference(case, strength)
        except Exception as exc:
            with pytest.raises(InvalidArgumentError):
                ours(case)
            tally.errors_agreed += 1
            del exc
            continue
        got = ours(case)
        info = got.img2img
        assert info is not None
        truncated = got.timesteps[info.begin_index :]
        step = (
            2 if scheduler == "KDPM2AncestralDiscreteScheduler" else 1
        )  # see kdpm2_ancestral_atol
        same = truncated.shape == expected.shape and _close(
            truncated[::step], expected[::step], TIMESTEP_RTOL, TIMESTEP_RTOL * 1000
        )
        if (begin is not None and info.begin_index != begin) or not same:
            tally.failures.append(
                f"{case.label()}: begin {info.begin_index} vs {begin}, "
                f"{truncated[:4]} vs {expected[:4]}"
            )
        start = float(expected[0]) if expected.size else None
        if (start is None) != (info.start_timestep is None) or (
            start is not None
            and not math.isclose(info.start_timestep, start, rel_tol=TIMESTEP_RTOL, abs_tol=2e-3)
        ):
            tally.failures.append(f"{case.label()}: start {info.start_timestep} vs {start}")
    report("img2img strength", tally)


# ---- the classes added for issue 14: random configurations ---------------------------------
#
# Every config option that changes an array and every set_timesteps extra of each added class,
# drawn at random (fixed seed, so a failure reproduces), with random step counts that include
# refused ones (the errors must agree too).

RANDOM_SEED = 14
RANDOM_CASES_PER_CLASS = 32
Sampler = Callable[[random.Random], Case]


def _steps(rng: random.Random, high: int = 200) -> int:
    roll = rng.random()
    if roll < 0.5:
        return rng.randint(1, 60)
    if roll < 0.8:
        return rng.randint(1, high)
    return rng.choice(AWKWARD_STEPS)


def _pick(rng: random.Random, *options: Mapping[str, Any]) -> dict[str, Any]:
    return dict(rng.choice(options))


def _vp_betas(rng: random.Random, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """A VP training schedule: a named beta schedule with random endpoints, or trained betas."""
    kind = rng.choice(("linear", "scaled_linear", "squaredcos_cap_v2", "trained", *extra))
    n_train = rng.choice((1000, 1000, 500, 1200))
    start = rng.uniform(5e-5, 1e-3)
    end = rng.uniform(0.008, 0.03)
    if kind == "trained":
        return {
            "num_train_timesteps": n_train,
            "trained_betas": np.linspace(start, end, n_train).tolist(),
        }
    return {
        "num_train_timesteps": n_train,
        "beta_schedule": kind,
        "beta_start": start,
        "beta_end": end,
    }


def _spacing(
    rng: random.Random, choices: tuple[str, ...] = ("linspace", "leading", "trailing")
) -> dict[str, Any]:
    return {"timestep_spacing": rng.choice(choices), "steps_offset": rng.choice((0, 0, 1))}


def _descending(rng: random.Random, count: int, low: float, high: float) -> list[float]:
    return sorted((rng.uniform(low, high) for _ in range(count)), reverse=True)


def _cm_stochastic(rng: random.Random) -> Case:
    n_train = rng.choice((40, 18, 151))
    o = {
        "num_train_timesteps": n_train,
        "sigma_min": rng.uniform(0.001, 0.05),
        "sigma_max": rng.uniform(10.0, 200.0),
        "rho": rng.uniform(3.0, 9.0),
    }
    if rng.random() < 0.25:
        picks = sorted(rng.sample(range(n_train), rng.randint(1, min(8, n_train))), reverse=True)
        return Case("CMStochasticIterativeScheduler", None, overrides={**o, "timesteps": picks})
    return Case("CMStochasticIterativeScheduler", rng.randint(1, n_train + 3), overrides=o)


def _cogvideox(name: str) -> Sampler:
    def sample(rng: random.Random) -> Case:
        o = {
            **_vp_betas(rng),
            **_spacing(rng),
            "snr_shift_scale": rng.uniform(1.0, 5.0),
            "rescale_betas_zero_snr": rng.random() < 0.3,
            "set_alpha_to_one": rng.random() < 0.5,
        }
        return Case(name, _steps(rng, 1200), overrides=o)

    return sample


def _consistency_decoder(rng: random.Random) -> Case:
    o = {
        "num_train_timesteps": rng.choice((1024, 1024, 2000, 1000)),
        "sigma_data": rng.uniform(0.2, 1.0),
    }
    return Case("ConsistencyDecoderScheduler", rng.choice((2, 2, 2, 1, 3)), overrides=o)


def _cosine_dpm(rng: random.Random) -> Case:
    o = {
        "sigma_min": rng.uniform(0.05, 1.0),
        "sigma_max": rng.uniform(50.0, 1000.0),
        "sigma_data": rng.uniform(0.5, 2.0),
        "sigma_schedule": rng.choice(("exponential", "karras")),
        "rho": rng.uniform(3.0, 9.0),
        "final_sigmas_type": rng.choice(("zero", "sigma_min")),
        "solver_type": rng.choice(("midpoint", "heun", "logrho", "bh1", "bh2")),
    }
    return Case("CosineDPMSolverMultistepScheduler", _steps(rng), overrides=o)


def _ddim_inverse(rng: random.Random) -> Case:
    o = {
        **_vp_betas(rng),
        **_spacing(rng, ("leading", "trailing")),
        "rescale_betas_zero_snr": rng.random() < 0.3,
        "set_alpha_to_one": rng.random() < 0.5,
    }
    return Case("DDIMInverseScheduler", _steps(rng, 1300), overrides=o)


def _ddim_parallel(rng: random.Random) -> Case:
    o = {**_vp_betas(rng), **_spacing(rng), "rescale_betas_zero_snr": rng.random() < 0.3}
    return Case("DDIMParallelScheduler", _steps(rng, 1300), overrides=o)


def _ddpm_parallel(rng: random.Random) -> Case:
    o = {
        **_vp_betas(rng, ("sigmoid", "laplace")),
        **_spacing(rng),
        "rescale_betas_zero_snr": rng.random() < 0.3,
    }
    if rng.random() < 0.2:
        picks = sorted(
            rng.sample(range(o["num_train_timesteps"]), rng.randint(1, 30)), reverse=True
        )
        return Case("DDPMParallelScheduler", None, overrides={**o, "timesteps": picks})
    return Case("DDPMParallelScheduler", _steps(rng, 1300), overrides=o)


def _wuerstchen(rng: random.Random) -> Case:
    o = {"scaler": rng.uniform(0.5, 2.0), "s": rng.uniform(0.001, 0.02)}
    if rng.random() < 0.25:
        ts = [1.0, *_descending(rng, rng.randint(1, 12), 0.01, 0.99), 0.0]
        return Case("DDPMWuerstchenScheduler", None, overrides={**o, "timesteps": ts})
    return Case("DDPMWuerstchenScheduler", _steps(rng), overrides=o)


def _dpm_inverse(rng: random.Random) -> Case:
    o = {
        **_vp_betas(rng),
        **_spacing(rng),
        **_pick(
            rng,
            {},
            {"use_karras_sigmas": True},
            {"use_exponential_sigmas": True},
            {"use_beta_sigmas": True},
            {"use_flow_sigmas": True, "flow_shift": rng.uniform(1.0, 6.0)},
        ),
        "algorithm_type": rng.choice(("dpmsolver++", "sde-dpmsolver++", "dpmsolver", "deis")),
        "solver_type": rng.choice(("midpoint", "heun", "logrho", "bh2")),
    }
    if o.get("beta_schedule") == "squaredcos_cap_v2" and rng.random() < 0.5:
        o["lambda_min_clipped"] = rng.uniform(-6.0, -3.0)
    return Case("DPMSolverMultistepInverseScheduler", _steps(rng, 1200), overrides=o)


def _flow_map(rng: random.Random) -> Case:
    o: dict[str, Any] = {"shift": rng.choice((1.0, rng.uniform(0.5, 8.0)))}
    roll = rng.random()
    if roll < 0.3:
        values = _descending(rng, rng.randint(1, 30), 0.01, 1.0)
        key = "sigmas" if roll < 0.15 else "timesteps"
        scale = 1.0 if key == "sigmas" else 1000.0
        steps = rng.choice((None, len(values), len(values) + 1))
        return Case(
            "FlowMapEulerDiscreteScheduler",
            steps,
            overrides={**o, key: [v * scale for v in values]},
        )
    return Case("FlowMapEulerDiscreteScheduler", _steps(rng), overrides=o)


def _flow_match_options(rng: random.Random) -> dict[str, Any]:
    o: dict[str, Any] = {"shift": rng.choice((1.0, rng.uniform(0.5, 8.0)))}
    if rng.random() < 0.3:
        o = {
            "use_dynamic_shifting": True,
            "mu": rng.uniform(0.3, 2.0),
            "time_shift_type": rng.choice(("exponential", "linear")),
        }
    o.update(
        _pick(
            rng,
            {},
            {},
            {"use_karras_sigmas": True},
            {"use_exponential_sigmas": True},
            {"use_beta_sigmas": True},
        )
    )
    o.update(
        _pick(rng, {}, {}, {"invert_sigmas": True}, {"shift_terminal": rng.uniform(0.01, 0.2)})
    )
    return o


def _flow_match_lcm(rng: random.Random) -> Case:
    o = {**_flow_match_options(rng), "scale_factors": rng.choice((None, [1.0, 1.5]))}
    if rng.random() < 0.25:
        values = _descending(rng, rng.randint(1, 20), 0.02, 1.0)
        return Case("FlowMatchLCMScheduler", None, overrides={**o, "sigmas": values})
    return Case("FlowMatchLCMScheduler", _steps(rng), overrides=o)


def _ltx_rf(rng: random.Random) -> Case:
    o = {**_flow_match_options(rng), "eta": rng.uniform(0.0, 1.0), "s_noise": rng.uniform(0.5, 1.5)}
    roll = rng.random()
    if roll < 0.3:
        values = [*_descending(rng, rng.randint(1, 20), 0.02, 1.0), rng.choice((0.0, 0.0, 0.01))]
        key = "sigmas" if roll < 0.2 else "timesteps"
        return Case(
            "LTXEulerAncestralRFScheduler",
            rng.choice((None, len(values) - 1, 3)),
            overrides={**o, key: values},
        )
    return Case("LTXEulerAncestralRFScheduler", _steps(rng), overrides=o)


def _helios(name: str) -> Sampler:
    def sample(rng: random.Random) -> Case:
        stages = rng.choice((1, 3, 2))
        ranges = {1: [0.0, 1.0], 2: [0.0, 0.5, 1.0], 3: [0, 1 / 3, 2 / 3, 1]}
        o: dict[str, Any] = {
            "num_train_timesteps": rng.choice((1000, 1000, 800)),
            "stages": stages,
            "stage_range": ranges[stages],
            "gamma": rng.uniform(0.2, 1.0),
            "time_shift_type": rng.choice(("exponential", "linear")),
        }
        if name == "HeliosScheduler":
            o["scheduler_type"] = rng.choice(("unipc", "dmd"))
            o["solver_type"] = rng.choice(("bh1", "bh2", "midpoint"))
        if rng.random() < 0.3:
            o.update(use_dynamic_shifting=True, mu=rng.uniform(0.3, 2.0))
        elif stages == 1:
            o["shift"] = rng.choice((1.0, rng.uniform(0.5, 8.0)))
        if stages > 1 and rng.random() < 0.9:
            o["stage_index"] = rng.randrange(stages)
        if rng.random() < 0.3:
            o["is_amplify_first_chunk"] = True
        if stages == 1 and rng.random() < 0.15:
            o["sigmas"] = _descending(rng, rng.randint(2, 12), 0.05, 0.99)
        return Case(name, _steps(rng, 100), overrides=o)

    return sample


def _ipndm(rng: random.Random) -> Case:
    o: dict[str, Any] = {"num_train_timesteps": rng.choice((1000, 50))}
    if rng.random() < 0.2:
        o["trained_betas"] = sorted(rng.uniform(0.0, 1.0) for _ in range(rng.randint(2, 20)))
    return Case("IPNDMScheduler", _steps(rng), overrides=o)


def _karras_ve(rng: random.Random) -> Case:
    o = {"sigma_min": rng.uniform(0.005, 0.1), "sigma_max": rng.uniform(20.0, 200.0)}
    return Case("KarrasVeScheduler", _steps(rng), overrides=o)


def _minimax_h3(rng: random.Random) -> Case:
    o: dict[str, Any] = {"shift": rng.choice((12.0, rng.uniform(0.5, 30.0)))}
    if rng.random() < 0.25:
        values = [*_descending(rng, rng.randint(1, 15), 0.05, 1.0), rng.choice((0.0, 0.0, 0.1))]
        return Case("MiniMaxH3Scheduler", None, overrides={**o, "sigmas": values})
    return Case("MiniMaxH3Scheduler", _steps(rng), overrides=o)


def _piflow(rng: random.Random) -> Case:
    o = {
        "num_train_timesteps": rng.choice((1000, 1000, 500)),
        "shift": rng.uniform(1.0, 8.0),
        "final_step_size_scale": rng.uniform(0.05, 1.0),
    }
    return Case("PiflowScheduler", _steps(rng), overrides=o)


def _repaint(rng: random.Random) -> Case:
    o = {
        **_vp_betas(rng, ("sigmoid",)),
        "jump_length": rng.randint(1, 20),
        "jump_n_sample": rng.randint(0, 12),
    }
    o.pop("trained_betas", None)  # RePaint takes trained betas only as a numpy array
    o.setdefault("beta_schedule", "linear")
    return Case("RePaintScheduler", _steps(rng, 300), overrides=o)


def _proteina(rng: random.Random) -> Case:
    o: dict[str, Any] = {
        "schedule_mode": rng.choice(("log", "power")),
        "noise_mode": rng.choice(("1/t", "tan")),
        "tsr_k": rng.uniform(0.5, 2.0),
        "tsr_sigma": rng.uniform(0.5, 2.0),
        "tail_steps": rng.choice((0, 5, 10)),
        "tail_step_multiplier": rng.choice((2, 3)),
    }
    if rng.random() < 0.3:
        o["start_time"] = rng.uniform(0.0, 0.99)
    return Case("RFD4ProteinaScheduler", _steps(rng, 150), overrides=o)


def _scm(rng: random.Random) -> Case:
    n = rng.choice((2, 2, 1, 4, rng.randint(1, 40)))
    o: dict[str, Any] = {}
    if rng.random() < 0.7:
        o["intermediate_timesteps"] = rng.choice((None, None, rng.uniform(0.5, 1.5)))
    if rng.random() < 0.5:
        o["max_timesteps"] = rng.uniform(1.0, 1.6)
    if rng.random() < 0.2:
        o.update(max_timesteps=None, timesteps=[1.57, *_descending(rng, n - 1, 0.1, 1.5), 0.0])
        return Case("SCMScheduler", rng.choice((None, n)), overrides=o)
    return Case("SCMScheduler", n, overrides=o)


def _score_sde_ve(rng: random.Random) -> Case:
    o = {
        "num_train_timesteps": rng.choice((2000, 500)),
        "sigma_min": rng.uniform(0.005, 0.05),
        "sigma_max": rng.uniform(50.0, 1500.0),
        "sampling_eps": rng.uniform(1e-6, 1e-3),
    }
    return Case("ScoreSdeVeScheduler", _steps(rng, 300), overrides=o)


def _score_sde_vp(rng: random.Random) -> Case:
    o = {
        "beta_min": rng.uniform(0.05, 0.5),
        "beta_max": rng.uniform(10.0, 30.0),
        "sampling_eps": rng.uniform(1e-5, 1e-2),
    }
    return Case("ScoreSdeVpScheduler", _steps(rng), overrides=o)


def _unclip(rng: random.Random) -> Case:
    o = {
        "num_train_timesteps": rng.choice((1000, 1000, 64)),
        "variance_type": rng.choice(("fixed_small_log", "learned_range")),
    }
    return Case("UnCLIPScheduler", _steps(rng, 1200), overrides=o)


ADDED_SAMPLERS: dict[str, Sampler] = {
    "CMStochasticIterativeScheduler": _cm_stochastic,
    "CogVideoXDDIMScheduler": _cogvideox("CogVideoXDDIMScheduler"),
    "CogVideoXDPMScheduler": _cogvideox("CogVideoXDPMScheduler"),
    "ConsistencyDecoderScheduler": _consistency_decoder,
    "CosineDPMSolverMultistepScheduler": _cosine_dpm,
    "DDIMInverseScheduler": _ddim_inverse,
    "DDIMParallelScheduler": _ddim_parallel,
    "DDPMParallelScheduler": _ddpm_parallel,
    "DDPMWuerstchenScheduler": _wuerstchen,
    "DPMSolverMultistepInverseScheduler": _dpm_inverse,
    "FlowMapEulerDiscreteScheduler": _flow_map,
    "FlowMatchLCMScheduler": _flow_match_lcm,
    "HeliosScheduler": _helios("HeliosScheduler"),
    "HeliosDMDScheduler": _helios("HeliosDMDScheduler"),
    "IPNDMScheduler": _ipndm,
    "KarrasVeScheduler": _karras_ve,
    "LTXEulerAncestralRFScheduler": _ltx_rf,
    "MiniMaxH3Scheduler": _minimax_h3,
    "PiflowScheduler": _piflow,
    "RePaintScheduler": _repaint,
    "RFD4ProteinaScheduler": _proteina,
    "SCMScheduler": _scm,
    "ScoreSdeVeScheduler": _score_sde_ve,
    "ScoreSdeVpScheduler": _score_sde_vp,
    "UnCLIPScheduler": _unclip,
}


def random_cases(classes: Iterable[str] = ADDED_SAMPLERS) -> Iterator[Case]:
    rng = random.Random(RANDOM_SEED)
    for name in classes:
        for _ in range(RANDOM_CASES_PER_CLASS):
            yield ADDED_SAMPLERS[name](rng)


def test_added_classes_random_configs() -> None:
    """The classes added for issue 14, random configurations and step counts."""
    report("added classes, random configs", run(random_cases()))


def test_total_configurations() -> None:
    """Runs last (file order): the total over this module."""
    say(f"[schedule parity] TOTAL configurations compared with diffusers: {TOTAL.configs}")
    say(f"[schedule parity] per class: {dict(sorted(TOTAL.by_class.items()))}")
    if REPORTS[0] < GRID_TESTS:
        pytest.skip(f"partial run ({REPORTS[0]} of {GRID_TESTS} grid tests)")
    assert TOTAL.configs >= 5000
