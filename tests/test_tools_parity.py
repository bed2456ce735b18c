"""sigmaserve against independent models of the upstream tools' own code (issue 13).

ComfyUI and AUTOMATIC1111 cannot run here (their dependencies), so each function below models
the upstream function named in its docstring, written from reading that code (none of it is
copied): the same torch/numpy operations, in the same order and precision.

- ComfyUI: Comfy-Org/ComfyUI a125cd84 (2025-10-11): comfy/model_sampling.py
  (ModelSamplingDiscrete, rescale_zero_terminal_snr_sigmas), comfy/samplers.py (the schedulers
  of SCHEDULER_HANDLERS, KSampler.set_steps / calculate_sigmas / sample, max_denoise),
  comfy/k_diffusion/sampling.py, comfy_extras/nodes_align_your_steps.py.
- AUTOMATIC1111 stable-diffusion-webui v1.10.1 (82a973c0): modules/sd_schedulers.py,
  modules/sd_samplers_kdiffusion.py (samplers_k_diffusion, KDiffusionSampler.get_sigmas,
  sample, sample_img2img), modules/sd_samplers_common.py (setup_img2img_steps),
  modules/sd_models.py (apply_alpha_schedule_override, rescale_zero_terminal_snr_abar),
  modules/rng.py (slerp, ImageRNG.first); k-diffusion's DiscreteSchedule, modelled too and
  checked against the installed k-diffusion.

The float32 transcendental operations (exp, log, sqrt, pow, tan, atan, acos, sin) are
pluggable: torch's own, or correctly rounded ones (computed in float64 and rounded). torch's
CPU versions are not correctly rounded on x86 wheels (MKL), sigmaserve's are; with the correctly
rounded ones the models must agree with sigmaserve **bit for bit**, which checks every other
operation and its order, and with torch's own the difference is measured and bounded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import sigmaserve
from sigmaserve import noise

torch = pytest.importorskip("torch")
scipy_stats = pytest.importorskip("scipy.stats")

from sigmaserve.ecosystem import ecosystem_schedule  # noqa: E402

# ---- float32 operations: torch's own, or correctly rounded -----------------------------------


class Ops:
    """The transcendental tensor operations the models use."""

    def __init__(self, exact: bool) -> None:
        self.exact = exact

    def _apply(self, x: Any, torch_fn: Callable[[Any], Any], np_fn: Callable[..., Any]) -> Any:
        if not self.exact:
            return torch_fn(x)
        wide = torch.from_numpy(np.asarray(np_fn(x.double().numpy()), dtype=np.float64))
        if x.dtype == torch.float64:
            return wide
        if not x.is_floating_point():
            return wide.float()  # integer input: torch's default float type
        # torch's float16 ops compute in float32 and round: float64 -> float32 -> float16.
        return wide.float().to(x.dtype)

    def exp(self, x: Any) -> Any:
        return self._apply(x, torch.exp, np.exp)

    def log(self, x: Any) -> Any:
        return self._apply(x, torch.log, np.log)

    def sqrt(self, x: Any) -> Any:
        return self._apply(x, torch.sqrt, np.sqrt)

    def tan(self, x: Any) -> Any:
        return self._apply(x, torch.tan, np.tan)

    def atan(self, x: Any) -> Any:
        return self._apply(x, torch.arctan, np.arctan)

    def acos(self, x: Any) -> Any:
        return self._apply(x, torch.acos, np.arccos)

    def sin(self, x: Any) -> Any:
        return self._apply(x, torch.sin, np.sin)

    def pow(self, x: Any, e: float) -> Any:
        """``x ** e``: torch computes exponents 1, 2 and 3 as products and 0.5 as sqrt
        (PowKernel.cpp), others with pow and the exponent cast to the tensor's float type."""
        if not self.exact or e in (1.0, 2.0, 3.0):
            return x**e
        if e == 0.5:
            return self.sqrt(x)
        e32 = float(np.float32(e))
        return self._apply(x, lambda t: t**e, lambda v: np.power(v, e32))


EXACT = Ops(exact=True)
TORCH = Ops(exact=False)


def append_zero(x: Any) -> Any:
    return torch.cat([x, x.new_zeros([1])])


def kd_karras(n: int, sigma_min: float, sigma_max: float, rho: float, ops: Ops) -> Any:
    """k-diffusion (and comfy/k_diffusion/sampling.py) get_sigmas_karras."""
    ramp = torch.linspace(0, 1, n)
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    return append_zero(ops.pow(max_inv_rho + ramp * (min_inv_rho - max_inv_rho), rho))


def kd_exponential(n: int, sigma_min: float, sigma_max: float, ops: Ops) -> Any:
    """k-diffusion get_sigmas_exponential."""
    return append_zero(ops.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), n)))


def kd_polyexponential(n: int, sigma_min: float, sigma_max: float, rho: float, ops: Ops) -> Any:
    """k-diffusion get_sigmas_polyexponential."""
    ramp = ops.pow(torch.linspace(1, 0, n), rho)
    lmin, lmax = math.log(sigma_min), math.log(sigma_max)
    return append_zero(ops.exp(ramp * (lmax - lmin) + lmin))


def loglinear_interp(t_steps: list[float], num_steps: int) -> np.ndarray:
    """The AYS resampling both UIs copy from NVIDIA's how-to."""
    xs = np.linspace(0, 1, len(t_steps))
    ys = np.log(t_steps[::-1])
    return np.exp(np.interp(np.linspace(0, 1, num_steps), xs, ys))[::-1].copy()


def sd_betas() -> Any:
    """make_beta_schedule("linear", 1000, 0.00085, 0.012) of LDM / ComfyUI (float64)."""
    return torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2


def tie_aware_equal(ours: Any, theirs: Any, sigmas: Any, log_sigmas: Any, what: str) -> int:
    """Quantised timesteps must agree, except where the sigma lies halfway between two table
    entries in log space up to float32 rounding: there torch's argmin keeps the first
    (lower) index in exact arithmetic, which sigmaserve returns, while a float32 model's answer
    depends on the rounding of its exp/log. Returns how many such ties were seen."""
    ours = np.asarray(ours, dtype=np.int64)
    theirs = np.asarray(theirs, dtype=np.int64)
    ties = 0
    for i in np.nonzero(ours != theirs)[0]:
        lo, hi = sorted((int(ours[i]), int(theirs[i])))
        ls = math.log(float(sigmas[i]))
        gap = abs(ls - float(log_sigmas[lo])) - abs(ls - float(log_sigmas[hi]))
        assert hi == lo + 1 and ours[i] == lo and abs(gap) < 1e-6, (
            f"{what}: timestep {i} ours {ours[i]} upstream {theirs[i]} (gap {gap:.3g})"
        )
        ties += 1
    return ties


# ---- ComfyUI ----------------------------------------------------------------------------------


class ComfyDiscrete:
    """comfy/model_sampling.py ModelSamplingDiscrete (SD's "linear" betas, 1000 steps): the table
    in float64, zsnr's rescale_zero_terminal_snr_sigmas in float64, stored as float32."""

    def __init__(self, zsnr: bool, ops: Ops) -> None:
        acp = torch.cumprod(1.0 - sd_betas(), dim=0)
        sigmas = ((1 - acp) / acp) ** 0.5
        if zsnr:
            abar = 1 / ((sigmas * sigmas) + 1)
            root = abar.sqrt()
            first, last = root[0].clone(), root[-1].clone()
            root -= last
            root *= first / (first - last)
            abar = root**2
            abar[-1] = 4.8973451890853435e-08
            sigmas = ((1 - abar) / abar) ** 0.5
        self.sigmas = sigmas.float()
        self.log_sigmas = sigmas.log().float()
        self.ops = ops

    @property
    def sigma_min(self) -> Any:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> Any:
        return self.sigmas[-1]

    def timestep(self, sigma: Any) -> Any:
        dists = self.ops.log(sigma) - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape)

    def sigma(self, timestep: Any) -> Any:
        t = torch.clamp(timestep.float(), min=0, max=len(self.sigmas) - 1)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return self.ops.exp((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high])


def comfy_simple(ms: ComfyDiscrete, steps: int) -> Any:
    ss = len(ms.sigmas) / steps
    return torch.FloatTensor([float(ms.sigmas[-(1 + int(x * ss))]) for x in range(steps)] + [0.0])


def comfy_ddim(ms: ComfyDiscrete, steps: int) -> Any:
    x = 1
    if math.isclose(float(ms.sigmas[x]), 0, abs_tol=0.00001):
        steps += 1
        sigs: list[float] = []
    else:
        sigs = [0.0]
    ss = max(len(ms.sigmas) // steps, 1)
    while x < len(ms.sigmas):
        sigs.append(float(ms.sigmas[x]))
        x += ss
    return torch.FloatTensor(sigs[::-1])


def comfy_normal(ms: ComfyDiscrete, steps: int, sgm: bool = False) -> Any:
    start, end = ms.timestep(ms.sigma_max), ms.timestep(ms.sigma_min)
    append = True
    if sgm:
        timesteps = torch.linspace(start, end, steps + 1)[:-1]
    else:
        if math.isclose(float(ms.sigma(end)), 0, abs_tol=0.00001):
            steps += 1
            append = False
        timesteps = torch.linspace(start, end, steps)
    sigs = [float(ms.sigma(ts)) for ts in timesteps]
    return torch.FloatTensor([*sigs, 0.0] if append else sigs)


def comfy_beta(ms: ComfyDiscrete, steps: int, alpha: float = 0.6, beta: float = 0.6) -> Any:
    total = len(ms.sigmas) - 1
    ts = np.rint(
        scipy_stats.beta.ppf(1 - np.linspace(0, 1, steps, endpoint=False), alpha, beta) * total
    )
    sigs, last = [], -1.0
    for t in ts:
        if t != last:
            sigs.append(float(ms.sigmas[int(t)]))
        last = t
    return torch.FloatTensor([*sigs, 0.0])


def comfy_linear_quadratic(ms: ComfyDiscrete, steps: int) -> Any:
    threshold, linear_steps = 0.025, steps // 2
    if steps == 1:
        schedule = [1.0, 0.0]
    else:
        linear = [i * threshold / linear_steps for i in range(linear_steps)]
        diff = linear_steps - threshold * steps
        quadratic_steps = steps - linear_steps
        qc = diff / (linear_steps * quadratic_steps**2)
        lc = threshold / linear_steps - 2 * diff / (quadratic_steps**2)
        const = qc * (linear_steps**2)
        quad = [qc * (i**2) + lc * i + const for i in range(linear_steps, steps)]
        schedule = [1.0 - x for x in linear + quad + [1.0]]
    return torch.FloatTensor(schedule) * ms.sigma_max


def comfy_kl_optimal(n: int, sigma_min: float, sigma_max: float, ops: Ops) -> Any:
    idx = torch.arange(n, dtype=torch.float).div_(n - 1)
    sigmas = idx.new_zeros(n + 1)
    sigmas[:-1] = ops.tan(idx * math.atan(sigma_min) + (1 - idx) * math.atan(sigma_max))
    return sigmas


COMFY_SCHEDULERS = [
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
    "linear_quadratic",
    "kl_optimal",
]
COMFY_DISCARD = {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"}
COMFY_SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m", "dpm_2", "dpm_2_ancestral", "uni_pc"]


def comfy_calculate_sigmas(ms: ComfyDiscrete, scheduler: str, steps: int) -> Any:
    """comfy/samplers.py calculate_sigmas over SCHEDULER_HANDLERS."""
    smin, smax = float(ms.sigma_min), float(ms.sigma_max)
    if scheduler == "karras":
        return kd_karras(steps, smin, smax, 7.0, ms.ops)
    if scheduler == "exponential":
        return kd_exponential(steps, smin, smax, ms.ops)
    if scheduler == "kl_optimal":
        return comfy_kl_optimal(steps, smin, smax, ms.ops)
    return {
        "simple": comfy_simple,
        "sgm_uniform": lambda m, s: comfy_normal(m, s, sgm=True),
        "ddim_uniform": comfy_ddim,
        "beta": comfy_beta,
        "normal": comfy_normal,
        "linear_quadratic": comfy_linear_quadratic,
    }[scheduler](ms, steps)


@dataclass
class ComfyRun:
    sigmas: np.ndarray
    timesteps: np.ndarray
    init_noise_sigma: float


def comfy_ksampler(
    ms: ComfyDiscrete,
    scheduler: str,
    sampler: str,
    steps: int,
    denoise: float = 1.0,
    last_step: int | None = None,
    start_step: int | None = None,
    force_full_denoise: bool = False,
) -> ComfyRun | None:
    """KSampler(Advanced): set_steps, calculate_sigmas with the discarded penultimate sigma,
    sample's last_step / force_full_denoise / start_step, and the noise_scaling factor
    (max_denoise: sqrt(1 + sigma^2)). None where ComfyUI returns the latent unsampled."""

    def calculate(n: int) -> Any:
        discard = sampler in COMFY_DISCARD
        sigmas = comfy_calculate_sigmas(ms, scheduler, n + 1 if discard else n)
        return torch.cat([sigmas[:-2], sigmas[-1:]]) if discard else sigmas

    if denoise > 0.9999:
        sigmas = calculate(steps)
    else:
        sigmas = calculate(int(steps / denoise))[-(steps + 1) :]
    if last_step is not None and last_step < len(sigmas) - 1:
        sigmas = sigmas[: last_step + 1]
        if force_full_denoise:
            sigmas[-1] = 0
    if start_step is not None:
        if start_step >= len(sigmas) - 1:
            return None
        sigmas = sigmas[start_step:]
    sigma = sigmas[0]
    max_sigma = float(ms.sigma_max)
    if math.isclose(max_sigma, float(sigma), rel_tol=1e-05) or float(sigma) > max_sigma:
        factor = float(ms.ops.sqrt(1.0 + sigma**2.0))
    else:
        factor = float(sigma)
    return ComfyRun(sigmas.numpy(), ms.timestep(sigmas[:-1]).numpy(), factor)


@pytest.fixture(scope="module")
def comfy_tables() -> dict[tuple[bool, bool], ComfyDiscrete]:
    return {
        (z, e): ComfyDiscrete(z, EXACT if e else TORCH)
        for z in (False, True)
        for e in (False, True)
    }


def comfy_random_case(rng: np.random.Generator) -> dict[str, Any]:
    case: dict[str, Any] = {
        "scheduler": str(rng.choice(COMFY_SCHEDULERS)),
        "sampler": str(rng.choice(COMFY_SAMPLERS)),
        "steps": int(rng.integers(1, 151)),
        "zsnr": bool(rng.random() < 0.25),
        "preset": str(rng.choice(["sd15", "sdxl"])),
    }
    if rng.random() < 0.5:
        case["denoise"] = float(np.round(rng.uniform(0.05, 1.0), 3))
    if rng.random() < 0.3:
        case["last_step"] = int(rng.integers(0, case["steps"] + 2))
        case["force_full_denoise"] = bool(rng.random() < 0.5)
    if rng.random() < 0.3:
        case["start_step"] = int(rng.integers(0, max(1, case["steps"] // 2)))
    return case


def run_comfy_case(case: dict[str, Any], ms: ComfyDiscrete) -> tuple[Any, ComfyRun | None]:
    ksampler = {k: v for k, v in case.items() if k not in ("scheduler", "steps", "preset", "zsnr")}
    want = comfy_ksampler(ms, case["scheduler"], steps=case["steps"], **ksampler)
    try:
        ours = ecosystem_schedule(
            f"comfyui:{case['scheduler']}",
            case["steps"],
            preset=case["preset"],
            zsnr=case["zsnr"],
            **ksampler,
        )
    except sigmaserve.InvalidArgumentError as exc:
        ours = exc
    return ours, want


def test_comfyui_random_cases_bit_for_bit(comfy_tables):
    rng = np.random.default_rng(13)
    ties = 0
    for _ in range(300):
        case = comfy_random_case(rng)
        ours, want = run_comfy_case(case, comfy_tables[(case["zsnr"], True)])
        if want is None:
            # ComfyUI returns the latent unsampled; sigmaserve refuses the empty schedule.
            assert isinstance(ours, sigmaserve.InvalidArgumentError), case
            assert ours.field == "start_step", case
            continue
        assert not isinstance(ours, Exception), (case, ours)
        np.testing.assert_array_equal(ours.sigmas, want.sigmas, err_msg=str(case))
        assert ours.init_noise_sigma == want.init_noise_sigma, case
        ms = comfy_tables[(case["zsnr"], True)]
        ties += tie_aware_equal(
            ours.timesteps, want.timesteps, ours.sigmas, ms.log_sigmas, str(case)
        )
    # sgm_uniform's fractional timesteps hit exact halves: the tie rule is exercised.
    assert ties > 0
    print(f"ComfyUI: {ties} quantised ties")


def test_comfyui_random_cases_with_torchs_own_math(comfy_tables):
    """With torch's float32 exp/log/sqrt/pow/tan (MKL on x86 wheels): within a few ulp."""
    rng = np.random.default_rng(14)
    worst = 0.0
    for _ in range(150):
        case = comfy_random_case(rng)
        ours, want = run_comfy_case(case, comfy_tables[(case["zsnr"], False)])
        if want is None:
            continue
        nz = want.sigmas > 0
        rel = np.abs(ours.sigmas[nz].astype(np.float64) - want.sigmas[nz]) / want.sigmas[nz]
        worst = max(worst, float(rel.max(initial=0.0)))
        assert ours.sigmas.shape == want.sigmas.shape and np.all(ours.sigmas[~nz] == 0), case
    # karras' (x^(1/7))^7 amplifies a 1-ulp pow difference sevenfold.
    assert worst < 1e-6


def test_comfyui_ays_node(comfy_tables):
    """comfy_extras/nodes_align_your_steps.py AlignYourStepsScheduler."""
    levels = {
        "sd1": [
            14.6146412293,
            6.4745760956,
            3.8636745985,
            2.6946151520,
            1.8841921177,
            1.3943805092,
            0.9642583904,
            0.6523686016,
            0.3977456272,
            0.1515232662,
            0.0291671582,
        ],
        "sdxl": [
            14.6146412293,
            6.3184485287,
            3.7681790315,
            2.1811480769,
            1.3405244945,
            0.8620721141,
            0.5550693289,
            0.3798540708,
            0.2332364134,
            0.1114188177,
            0.0291671582,
        ],
    }
    rng = np.random.default_rng(15)
    for _ in range(60):
        model, steps = str(rng.choice(list(levels))), int(rng.integers(1, 120))
        denoise = 1.0 if rng.random() < 0.4 else float(np.round(rng.uniform(0.05, 1.0), 2))
        total = steps if denoise >= 1.0 else round(steps * denoise)
        if total == 0:
            continue
        sigmas = levels[model][:]
        if steps + 1 != len(sigmas):
            sigmas = loglinear_interp(sigmas, steps + 1)
        sigmas = sigmas[-(total + 1) :]
        sigmas[-1] = 0
        ours = ecosystem_schedule(
            "comfyui:align_your_steps", steps, model_type=model, denoise=denoise
        )
        np.testing.assert_array_equal(ours.sigmas, torch.FloatTensor(sigmas).numpy())


# ---- AUTOMATIC1111 ----------------------------------------------------------------------------


class KDiscrete:
    """k_diffusion/external.py DiscreteSchedule (the k-diffusion A1111 v1.10 pins), as
    CompVisDenoiser builds it from the model's alphas_cumprod buffer."""

    def __init__(self, alphas_cumprod: Any, quantize: bool, ops: Ops) -> None:
        self.sigmas = ops.pow((1 - alphas_cumprod) / alphas_cumprod, 0.5)
        self.log_sigmas = ops.log(self.sigmas)
        self.quantize = quantize
        self.ops = ops

    def get_sigmas(self, n: int) -> Any:
        return append_zero(self.t_to_sigma(torch.linspace(len(self.sigmas) - 1, 0, n)))

    def sigma_to_t(self, sigma: Any, quantize: bool | None = None) -> Any:
        quantize = self.quantize if quantize is None else quantize
        log_sigma = self.ops.log(sigma)
        dists = log_sigma - self.log_sigmas[:, None]
        if quantize:
            return dists.abs().argmin(dim=0).view(sigma.shape)
        low_idx = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=self.log_sigmas.shape[0] - 2)
        high_idx = low_idx + 1
        low, high = self.log_sigmas[low_idx], self.log_sigmas[high_idx]
        w = ((low - log_sigma) / (low - high)).clamp(0, 1)
        return ((1 - w) * low_idx + w * high_idx).view(sigma.shape)

    def t_to_sigma(self, t: Any) -> Any:
        t = t.float()
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return self.ops.exp((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high])


def a1111_alphas_cumprod(downcast: bool, zsnr: bool, ops: Ops) -> Any:
    """The LDM model's float32 alphas_cumprod buffer (numpy float64 cumprod, stored float32)
    after apply_alpha_schedule_override: .half() for "Downcast alphas_cumprod", then
    rescale_zero_terminal_snr_abar for "Zero Terminal SNR" (in the buffer's dtype)."""
    acp = torch.tensor(np.cumprod(1.0 - sd_betas().numpy(), axis=0), dtype=torch.float32)
    if downcast:
        acp = acp.half()
    if zsnr:
        root = ops.sqrt(acp)
        first, last = root[0].clone(), root[-1].clone()
        root -= last
        root *= first / (first - last)
        acp = root**2
        acp[-1] = 4.8973451890853435e-08
    return acp


def a1111_uniform(n: int, smin: float, smax: float, inner: KDiscrete) -> Any:
    return inner.get_sigmas(n)


def a1111_normal(n: int, smin: float, smax: float, inner: KDiscrete, sgm: bool = False) -> Any:
    start = inner.sigma_to_t(torch.tensor(smax))
    end = inner.sigma_to_t(torch.tensor(smin))
    timesteps = torch.linspace(start, end, n + 1)[:-1] if sgm else torch.linspace(start, end, n)
    return torch.FloatTensor([inner.t_to_sigma(ts) for ts in timesteps] + [0.0])


def a1111_kl_optimal(n: int, smin: float, smax: float, ops: Ops) -> Any:
    alpha_min = ops.atan(torch.tensor(smin))
    alpha_max = ops.atan(torch.tensor(smax))
    idx = torch.arange(n + 1)
    return ops.tan(idx / n * alpha_min + (1.0 - idx / n) * alpha_max)


def a1111_ays(n: int, sdxl: bool) -> Any:
    if sdxl:
        sigmas = [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029]
    else:
        sigmas = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]
    out = np.append(loglinear_interp(sigmas, n), [0.0]) if n != len(sigmas) else [*sigmas, 0.0]
    return torch.FloatTensor(out)


def a1111_simple(n: int, inner: KDiscrete) -> Any:
    ss = len(inner.sigmas) / n
    return torch.FloatTensor([float(inner.sigmas[-(1 + int(x * ss))]) for x in range(n)] + [0.0])


def a1111_ddim(n: int, inner: KDiscrete) -> Any:
    sigs, ss, x = [], max(len(inner.sigmas) // n, 1), 1
    while x < len(inner.sigmas):
        sigs.append(float(inner.sigmas[x]))
        x += ss
    return torch.FloatTensor([*sigs[::-1], 0.0])


def a1111_beta(n: int, smin: float, smax: float, alpha: float, beta: float) -> Any:
    ts = [scipy_stats.beta.ppf(x, alpha, beta) for x in 1 - np.linspace(0, 1, n)]
    return torch.FloatTensor([smin + x * (smax - smin) for x in ts] + [0.0])


# samplers_k_diffusion: label -> (scheduler option, discard_next_to_last_sigma)
A1111_SAMPLERS = {
    "DPM++ 2M": ("karras", False),
    "DPM++ SDE": ("karras", False),
    "DPM++ 2M SDE": ("exponential", False),
    "DPM++ 2M SDE Heun": ("exponential", False),
    "DPM++ 2S a": ("karras", False),
    "DPM++ 3M SDE": ("exponential", True),
    "Euler a": (None, False),
    "Euler": (None, False),
    "LMS": (None, False),
    "Heun": (None, False),
    "DPM2": ("karras", True),
    "DPM2 a": ("karras", True),
    "DPM fast": (None, False),
    "DPM adaptive": (None, False),
    "Restart": ("karras", False),
}
# sd_schedulers.schedulers: name -> default_rho (-1: none)
A1111_SCHEDULERS = {
    "automatic": -1.0,
    "uniform": -1.0,
    "karras": 7.0,
    "exponential": -1.0,
    "polyexponential": 1.0,
    "sgm_uniform": -1.0,
    "kl_optimal": -1.0,
    "align_your_steps": -1.0,
    "simple": -1.0,
    "normal": -1.0,
    "ddim": -1.0,
    "beta": -1.0,
}


@dataclass
class A1111Opts:
    """The settings of shared_options.py that shape a schedule, with A1111's defaults."""

    sigma_min: float = 0.0
    sigma_max: float = 0.0
    rho: float = 0.0
    always_discard_next_to_last_sigma: bool = False
    use_old_karras_scheduler_sigmas: bool = False
    enable_quantization: bool = False
    use_downcasted_alpha_bar: bool = False
    zsnr: bool = False
    beta_dist_alpha: float = 0.6
    beta_dist_beta: float = 0.6
    sgm_noise_multiplier: bool = False
    img2img_fix_steps: bool = False


def a1111_get_sigmas(
    inner: KDiscrete, scheduler: str, sampler: str, steps: int, o: A1111Opts
) -> Any:
    """KDiffusionSampler.get_sigmas (sd_samplers_kdiffusion.py v1.10.1)."""
    auto, discard = A1111_SAMPLERS[sampler]
    discard = discard or o.always_discard_next_to_last_sigma
    steps += 1 if discard else 0
    name = auto if scheduler == "automatic" else scheduler
    m_min, m_max = inner.sigmas[0].item(), inner.sigmas[-1].item()
    smin, smax = (0.1, 10) if o.use_old_karras_scheduler_sigmas else (m_min, m_max)
    if name is None:
        sigmas = inner.get_sigmas(steps)
    else:
        if o.sigma_min != 0 and o.sigma_min != m_min:
            smin = o.sigma_min
        if o.sigma_max != 0 and o.sigma_max != m_max:
            smax = o.sigma_max
        default_rho = A1111_SCHEDULERS[name]
        rho = o.rho if default_rho != -1 and o.rho != 0 and o.rho != default_rho else default_rho
        ops = inner.ops
        sigmas = {
            "uniform": lambda: a1111_uniform(steps, smin, smax, inner),
            "karras": lambda: kd_karras(steps, smin, smax, rho, ops),
            "exponential": lambda: kd_exponential(steps, smin, smax, ops),
            "polyexponential": lambda: kd_polyexponential(steps, smin, smax, rho, ops),
            "sgm_uniform": lambda: a1111_normal(steps, smin, smax, inner, sgm=True),
            "kl_optimal": lambda: a1111_kl_optimal(steps, smin, smax, ops),
            "align_your_steps": lambda: a1111_ays(steps, sdxl=False),
            "simple": lambda: a1111_simple(steps, inner),
            "normal": lambda: a1111_normal(steps, smin, smax, inner),
            "ddim": lambda: a1111_ddim(steps, inner),
            "beta": lambda: a1111_beta(steps, smin, smax, o.beta_dist_alpha, o.beta_dist_beta),
        }[name]()
    if discard:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas


def a1111_run(
    inner: KDiscrete, scheduler: str, sampler: str, steps: int, o: A1111Opts, strength: float | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """sample (txt2img: x * sigmas[0], or x * sqrt(1 + sigmas[0]^2) with the SGM noise
    multiplier) and sample_img2img (setup_img2img_steps, sigmas[steps - t_enc - 1:],
    noise * sigma_sched[0]); the timesteps are what CompVisDenoiser feeds the UNet."""
    if strength is None:
        sigmas = a1111_get_sigmas(inner, scheduler, sampler, steps, o)
        s0 = sigmas[0]
        factor = float(inner.ops.sqrt(1.0 + s0**2.0)) if o.sgm_noise_multiplier else float(s0)
    else:
        if o.img2img_fix_steps:
            total = int(steps / min(strength, 0.999)) if strength > 0 else 0
            t_enc = steps - 1
        else:
            total = steps
            t_enc = int(min(strength, 0.999) * steps)
        sigmas = a1111_get_sigmas(inner, scheduler, sampler, total, o)[total - t_enc - 1 :]
        factor = float(sigmas[0])
    return sigmas.numpy(), inner.sigma_to_t(sigmas[:-1]).numpy(), factor


@pytest.fixture(scope="module")
def a1111_tables() -> Callable[[bool, bool, bool, bool], KDiscrete]:
    cache: dict[tuple[bool, ...], KDiscrete] = {}

    def get(downcast: bool, zsnr: bool, quantize: bool, exact: bool) -> KDiscrete:
        key = (downcast, zsnr, quantize, exact)
        if key not in cache:
            ops = EXACT if exact else TORCH
            cache[key] = KDiscrete(a1111_alphas_cumprod(downcast, zsnr, ops), quantize, ops)
        return cache[key]

    return get


def test_kdiscrete_model_is_installed_k_diffusion():
    """The DiscreteSchedule model with torch's own ops is k-diffusion's, on float32 and
    float16 (downcast) tables, both sigma_to_t mappings and t_to_sigma."""
    from test_ecosystem import _load_kdiffusion

    kd = _load_kdiffusion()
    for downcast in (False, True):
        acp = a1111_alphas_cumprod(downcast, False, TORCH)
        for quantize in (False, True):
            model = KDiscrete(acp, quantize, TORCH)
            real = kd.external.DiscreteSchedule(((1 - acp) / acp) ** 0.5, quantize)
            assert torch.equal(model.sigmas, real.sigmas) and torch.equal(
                model.log_sigmas, real.log_sigmas
            )
            probe = torch.cat([real.get_sigmas(37)[:-1], torch.tensor([0.05, 0.3, 3.0, 14.0])])
            assert torch.equal(model.sigma_to_t(probe), real.sigma_to_t(probe))
            # 0-d tensors (A1111's normal / sgm_uniform ends): on the float16 table torch's
            # promotion keeps float16, so these differ from the 1-D results.
            for one in (
                torch.tensor(0.2564),
                torch.tensor(9.28),
                torch.tensor(10),
                torch.tensor(0.1),
            ):
                assert torch.equal(model.sigma_to_t(one), real.sigma_to_t(one))
            t = torch.linspace(999, 0, 53)
            assert torch.equal(model.t_to_sigma(t), real.t_to_sigma(t))
            assert torch.equal(model.get_sigmas(20), real.get_sigmas(20))


def a1111_random_case(rng: np.random.Generator) -> tuple[str, str, int, A1111Opts, float | None]:
    scheduler = str(rng.choice(list(A1111_SCHEDULERS)))
    sampler = str(rng.choice(list(A1111_SAMPLERS)))
    steps = int(rng.integers(1, 151))
    o = A1111Opts(
        always_discard_next_to_last_sigma=bool(rng.random() < 0.2),
        use_old_karras_scheduler_sigmas=bool(rng.random() < 0.1),
        enable_quantization=bool(rng.random() < 0.3),
        use_downcasted_alpha_bar=bool(rng.random() < 0.25),
        sgm_noise_multiplier=bool(rng.random() < 0.2),
        img2img_fix_steps=bool(rng.random() < 0.3),
    )
    o.zsnr = bool(rng.random() < 0.2) and not o.use_downcasted_alpha_bar
    if rng.random() < 0.3:
        o.sigma_min = float(np.round(rng.uniform(0.03, 0.5), 4))
    if rng.random() < 0.3:
        o.sigma_max = float(np.round(rng.uniform(2.0, 20.0), 3))
    if rng.random() < 0.3:
        o.rho = float(rng.choice([1.0, 3.0, 5.0, 7.0, 9.0]))
    if scheduler == "beta" and rng.random() < 0.5:
        o.beta_dist_alpha = float(np.round(rng.uniform(0.2, 1.0), 2))
        o.beta_dist_beta = float(np.round(rng.uniform(0.2, 1.0), 2))
    strength = float(np.round(rng.uniform(0.05, 1.0), 3)) if rng.random() < 0.3 else None
    return scheduler, sampler, steps, o, strength


def ours_a1111(
    scheduler: str, sampler: str, steps: int, o: A1111Opts, strength: float | None
) -> Any:
    opts = {k: v for k, v in vars(o).items() if v != getattr(A1111Opts(), k)}
    if strength is not None:
        opts["denoising_strength"] = strength
    return ecosystem_schedule(f"a1111:{scheduler}", steps, preset="sd15", sampler=sampler, **opts)


def test_a1111_random_cases_bit_for_bit(a1111_tables):
    rng = np.random.default_rng(23)
    checked = ties = 0
    while checked < 300:
        scheduler, sampler, steps, o, strength = a1111_random_case(rng)
        smin = o.sigma_min or None
        smax = o.sigma_max or None
        if smin and smax and smin >= smax:
            continue
        inner = a1111_tables(o.use_downcasted_alpha_bar, o.zsnr, o.enable_quantization, True)
        want_sigmas, want_t, want_f = a1111_run(inner, scheduler, sampler, steps, o, strength)
        case = (scheduler, sampler, steps, o, strength)
        ours = ours_a1111(scheduler, sampler, steps, o, strength)
        np.testing.assert_array_equal(ours.sigmas, want_sigmas, err_msg=str(case))
        assert ours.init_noise_sigma == want_f, case
        if o.enable_quantization:
            ties += tie_aware_equal(
                ours.timesteps, want_t, ours.sigmas, inner.log_sigmas, str(case)
            )
        else:
            np.testing.assert_array_equal(
                ours.timesteps, want_t.astype(np.float32), err_msg=str(case)
            )
        checked += 1
    print(f"A1111: {checked} cases bit for bit, {ties} quantised ties")


def test_a1111_random_cases_with_torchs_own_math(a1111_tables):
    rng = np.random.default_rng(24)
    worst = 0.0
    for _ in range(150):
        scheduler, sampler, steps, o, strength = a1111_random_case(rng)
        if o.sigma_min and o.sigma_max and o.sigma_min >= o.sigma_max:
            continue
        inner = a1111_tables(o.use_downcasted_alpha_bar, o.zsnr, o.enable_quantization, False)
        want_sigmas, _, _ = a1111_run(inner, scheduler, sampler, steps, o, strength)
        ours = ours_a1111(scheduler, sampler, steps, o, strength)
        nz = want_sigmas > 0
        assert ours.sigmas.shape == want_sigmas.shape
        rel = np.abs(ours.sigmas[nz].astype(np.float64) - want_sigmas[nz]) / want_sigmas[nz]
        worst = max(worst, float(rel.max(initial=0.0)))
    # Zero terminal SNR in float32 amplifies torch's 1-ulp sqrt near sigma_min (the warning),
    # and on the float16 (downcast) table a 1-ulp float32 log can round to a neighbouring
    # float16 ln sigma: up to about 2e-4 of sigma.
    assert worst < 5e-4


# ---- the issue's reproducers ------------------------------------------------------------------


def test_issue13_a1111_downcast_keeps_the_table_in_float16(a1111_tables):
    s = ecosystem_schedule(
        "a1111:karras", 20, preset="sd15", sampler="Euler", use_downcasted_alpha_bar=True
    )
    assert s.model_sigma_range == (0.03125, 14.609375)
    inner = a1111_tables(True, False, False, True)
    assert (inner.sigmas[0].item(), inner.sigmas[-1].item()) == (0.03125, 14.609375)
    want, _, _ = a1111_run(
        inner, "karras", "Euler", 20, A1111Opts(use_downcasted_alpha_bar=True), None
    )
    np.testing.assert_array_equal(s.sigmas, want)
    uniform = ecosystem_schedule("a1111:uniform", 20, use_downcasted_alpha_bar=True)
    assert uniform.sigmas[0] == np.float32(math.exp(inner.log_sigmas[-1].item()))


def test_issue13_comfyui_zsnr_rescales_in_float64(comfy_tables):
    s = ecosystem_schedule("comfyui:simple", 107, preset="sd15", denoise=0.18, zsnr=True)
    assert s.model_sigma_range[0] == float(np.float32(0.029167158529162407))
    want = comfy_ksampler(comfy_tables[(True, True)], "simple", "euler", 107, denoise=0.18)
    assert want is not None
    np.testing.assert_array_equal(s.sigmas, want.sigmas)
    assert any("zero terminal SNR" in w for w in s.warnings)


def test_issue13_a1111_quantization_moves_overridden_sigma_ends(a1111_tables):
    s = ecosystem_schedule(
        "a1111:normal", 20, preset="sd15", sampler="Euler", sigma_min=0.1, enable_quantization=True
    )
    assert s.sigmas[-2] == pytest.approx(0.09829, abs=1e-5)
    o = A1111Opts(sigma_min=0.1, enable_quantization=True)
    want, _, _ = a1111_run(a1111_tables(False, False, True, True), "normal", "Euler", 20, o, None)
    np.testing.assert_array_equal(s.sigmas, want)
    sgm = ecosystem_schedule("a1111:sgm_uniform", 20, sigma_max=10.0, enable_quantization=True)
    want, _, _ = a1111_run(
        a1111_tables(False, False, True, True),
        "sgm_uniform",
        "Euler",
        20,
        A1111Opts(sigma_max=10.0, enable_quantization=True),
        None,
    )
    np.testing.assert_array_equal(sgm.sigmas, want)


def test_issue13_valid_options_without_effect_are_accepted():
    for sampler in ("DPM2", "DPM2 a"):
        s = ecosystem_schedule(
            "a1111:automatic", 20, sampler=sampler, always_discard_next_to_last_sigma=True
        )
        plain = ecosystem_schedule("a1111:automatic", 20, sampler=sampler)
        np.testing.assert_array_equal(s.sigmas, plain.sigmas)
        assert any("always_discard_next_to_last_sigma" in w for w in s.warnings)
    for name in ("karras", "simple", "align_your_steps"):
        s = ecosystem_schedule(f"comfyui:{name}", 20, force_full_denoise=True)
        np.testing.assert_array_equal(s.sigmas, ecosystem_schedule(f"comfyui:{name}", 20).sigmas)
        assert any("force_full_denoise" in w for w in s.warnings)
        assert ecosystem_schedule(f"comfyui:{name}", 20, force_full_denoise=False).warnings == (
            ecosystem_schedule(f"comfyui:{name}", 20).warnings
        )
    cut = ecosystem_schedule("comfyui:karras", 20, last_step=10, force_full_denoise=True)
    assert (
        cut.sigmas[-1] == 0
        and len(cut.sigmas) == 11
        and not any("force_full" in w for w in cut.warnings)
    )
    a = ecosystem_schedule("a1111:uniform", 20, sigma_min=0.1, rho=3.0)
    assert any(w.startswith("sigma_min has no effect") for w in a.warnings)
    assert any(w.startswith("rho has no effect") for w in a.warnings)
    img = ecosystem_schedule("a1111:karras", 20, denoising_strength=0.5, sgm_noise_multiplier=True)
    assert img.init_noise == "sigma" and any("sgm_noise_multiplier" in w for w in img.warnings)
    txt = ecosystem_schedule("a1111:karras", 20, img2img_fix_steps=True)
    assert any("img2img_fix_steps" in w for w in txt.warnings)
    ays = ecosystem_schedule("comfyui:align_your_steps", 10, sampler="dpm_2")
    assert any("penultimate" in w for w in ays.warnings)
    with pytest.raises(sigmaserve.InvalidArgumentError, match="bogus"):
        ecosystem_schedule("a1111:karras", 20, bogus=True)


def test_issue13_comfyui_quantized_ties_round_as_torch_argmin(comfy_tables):
    s = ecosystem_schedule("comfyui:sgm_uniform", 148, preset="sd15")
    t = torch.linspace(999, 0, 149)[:-1]
    assert t[118].item() == 202.5
    assert s.timesteps[118] == 202
    # Every exact tie of this schedule (t = k + 1/2) maps to k, the first minimum.
    halves = np.nonzero((t.numpy() % 1) == 0.5)[0]
    assert len(halves) > 10
    np.testing.assert_array_equal(s.timesteps[halves], np.floor(t.numpy()[halves]))
    assert s.timesteps_quantized is not None
    np.testing.assert_array_equal(s.timesteps_quantized, s.timesteps)


def test_issue13_to_torch_keeps_zero_d_shapes():
    zero_d = np.array(1.5, dtype=np.float32)
    assert noise.to_torch(zero_d).shape == ()
    assert noise.to_torch(np.array(0x3FC0, dtype=np.uint16)).shape == ()
    lat = sigmaserve.Latents(array=zero_d, init_noise_sigma=1.0, seeds=(0,))
    assert lat.to_torch().shape == ()
    assert lat.to_torch(dtype=torch.float64).item() == 1.5
    assert noise.to_torch(np.zeros((2, 0, 3), np.float32)).shape == (2, 0, 3)


def test_sigma_accepts_the_callers_own_float32_scale():
    """sigma= takes a numpy or torch float32 scalar; the product is then the caller's own
    torch multiplication (torch multiplies a float32 tensor by a scalar in float32)."""
    scale = torch.tensor(14.6488135, dtype=torch.float32)
    g = torch.Generator().manual_seed(7)
    want = (torch.randn((1, 4, 16, 16), generator=g) * scale).numpy()
    for sigma in (scale, scale.numpy()[()], np.float32(scale.item()), scale.item()):
        lat = sigmaserve.sample_init_latents(
            shape=(1, 4, 16, 16), seeds=7, seed_mode="batch", sigma=sigma
        )
        np.testing.assert_array_equal(lat.array, want)
        assert lat.init_noise_sigma == scale.item()
    with pytest.raises(sigmaserve.InvalidArgumentError, match="sigma"):
        sigmaserve.sample_init_latents(shape=(1, 4, 8, 8), seeds=0, sigma=torch.ones(2))
    with pytest.raises(sigmaserve.InvalidArgumentError, match="sigma"):
        sigmaserve.sample_init_latents(shape=(1, 4, 8, 8), seeds=0, sigma=np.bool_(True))


def test_zero_snr_warnings_name_the_precision_limit():
    d = sigmaserve.get_schedule(
        "EulerDiscreteScheduler", 30, rescale_betas_zero_snr=True, timestep_spacing="trailing"
    )
    assert any(w.startswith("rescale_betas_zero_snr") and "1.5e-3" in w for w in d.warnings)
    plain = sigmaserve.get_schedule("EulerDiscreteScheduler", 30)
    assert not any("zero" in w.lower() for w in plain.warnings)
    for name in ("comfyui:karras", "a1111:karras", "kdiffusion:karras"):
        z = ecosystem_schedule(name, 20, zsnr=True)
        assert any("zero terminal SNR" in w for w in z.warnings), name
        assert not any("zero terminal SNR" in w for w in ecosystem_schedule(name, 20).warnings)
    routed = sigmaserve.get_schedule("comfyui:normal", 20, zsnr=True)
    assert any("zero terminal SNR" in w for w in routed.warnings)


# ---- A1111 variation seeds: modules/rng.py slerp on the CPU path -----------------------------


def a1111_slerp(val: float, low: Any, high: Any, ops: Ops) -> Any:
    """modules/rng.py slerp on one [C, H, W] item: normalise along dim 1, per-column dot,
    the mean > 0.9995 fallback, acos/sin weights, all in the tensors' dtype."""
    low_n = low / torch.norm(low, dim=1, keepdim=True)
    high_n = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_n * high_n).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = ops.acos(dot)
    so = ops.sin(omega)
    a = (ops.sin((1.0 - val) * omega) / so).unsqueeze(1)
    b = (ops.sin(val * omega) / so).unsqueeze(1)
    return a * low + b * high


def cpu_randn(seed: int, shape: tuple[int, ...], dtype: Any = None) -> Any:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def a1111_variation(
    shape: tuple[int, ...], seed: int, subseed: int, strength: float, ops: Ops
) -> Any:
    """ImageRNG.first with RNG source CPU, no seed resize: every image shares the seed when a
    strength is set (processing.py), image i uses subseed + i."""
    b, *item = shape
    return torch.stack(
        [
            a1111_slerp(
                strength, cpu_randn(seed, tuple(item)), cpu_randn(subseed + i, tuple(item)), ops
            )
            for i in range(b)
        ]
    )


def test_a1111_slerp_bit_for_bit_on_random_shapes():
    torch.set_num_threads(1)
    rng = np.random.default_rng(31)
    differing_with_torch_math = total = 0
    for _ in range(80):
        shape = (
            int(rng.integers(1, 3)),
            int(rng.integers(1, 5)),
            int(rng.integers(2, 70)),
            int(rng.integers(2, 100)),
        )
        seed, subseed = int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32))
        strength = float(rng.choice([rng.uniform(0, 1), 0.5, 1.0, 0.05]))
        ours = noise.sample_noise(
            shape, [seed], seed_mode="a1111", subseeds=[subseed], subseed_strength=strength
        )
        want = a1111_variation(shape, seed, subseed, strength, EXACT).numpy()
        np.testing.assert_array_equal(ours, want, err_msg=f"{shape} {seed} {subseed} {strength}")
        with_torch = a1111_variation(shape, seed, subseed, strength, TORCH).numpy()
        differing_with_torch_math += int((ours != with_torch).sum())
        total += ours.size
        assert float(np.abs(ours - with_torch).max()) < 1e-5
    # torch's float32 acos/sin (MKL on x86 wheels) are not correctly rounded: some elements
    # differ in the last bit, none more than 1e-5.
    assert differing_with_torch_math < 0.5 * total


def test_issue13_a1111_variation_reproducer():
    shape, seed, subseed = (2, 4, 31, 81), 1344343111, 5
    ours = noise.sample_noise(
        shape, [seed], seed_mode="a1111", subseeds=[subseed], subseed_strength=0.5
    )
    np.testing.assert_array_equal(ours, a1111_variation(shape, seed, subseed, 0.5, EXACT).numpy())
    # The float16 request: A1111's float32 result, rounded.
    half = noise.sample_noise(
        shape, [seed], seed_mode="a1111", subseeds=[subseed], subseed_strength=0.5, dtype="float16"
    )
    np.testing.assert_array_equal(half, ours.astype(np.float16))


def test_a1111_slerp_float64_follows_torch_order():
    rng = np.random.default_rng(32)
    for _ in range(20):
        shape = (1, int(rng.integers(1, 5)), int(rng.integers(2, 40)), int(rng.integers(2, 70)))
        seed, subseed = int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32))
        strength = float(rng.uniform(0, 1))
        ours = noise.sample_noise(
            shape,
            [seed],
            seed_mode="a1111",
            subseeds=[subseed],
            subseed_strength=strength,
            dtype="float64",
        )
        low = cpu_randn(seed, shape[1:], torch.float64)
        high = cpu_randn(subseed, shape[1:], torch.float64)
        want = a1111_slerp(strength, low, high, EXACT).numpy()
        # float64 acos/sin: numpy's and libm's may differ by an ulp of float64.
        np.testing.assert_allclose(ours[0], want, rtol=1e-14, atol=1e-14)


def test_a1111_slerp_one_latent_column():
    """Width 1 (seed resize from 8-15 px wide): torch normalises along the contiguous last
    dim with another kernel; sigmaserve follows it to the last bit on nearly every item."""
    rng = np.random.default_rng(33)
    exact = 0
    for _ in range(100):
        c, h = int(rng.integers(1, 5)), int(rng.integers(2, 120))
        seed, subseed, strength = (
            int(rng.integers(0, 2**32)),
            int(rng.integers(0, 2**32)),
            float(rng.uniform(0, 1)),
        )
        ours = noise.sample_noise(
            (1, c, h, 1), [seed], seed_mode="a1111", subseeds=[subseed], subseed_strength=strength
        )
        want = a1111_variation((1, c, h, 1), seed, subseed, strength, EXACT).numpy()
        exact += bool(np.array_equal(ours, want))
        np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-6)
    assert exact >= 95


def test_issue13_one_latent_row_is_refused():
    # A1111's resize from 8-15 px high leaves one latent row: its slerp gives NaN / ~1e7.
    with pytest.raises(sigmaserve.InvalidArgumentError) as err:
        noise.sample_noise(
            (1, 4, 8, 8),
            [1],
            seed_mode="a1111",
            subseeds=[2],
            subseed_strength=0.5,
            seed_resize_from=(8, 1),
        )
    assert err.value.field == "seed_resize_from" and "1 latent row" in str(err.value)
    with pytest.raises(sigmaserve.InvalidArgumentError) as err:
        noise.sample_noise((1, 4, 1, 8), [1], seed_mode="a1111", subseeds=[2], subseed_strength=0.5)
    assert err.value.field == "subseeds"
    # Without a variation strength a one-row resize is just a paste: accepted.
    noise.sample_noise((1, 4, 8, 8), [1], seed_mode="a1111", seed_resize_from=(8, 1))
    with torch.no_grad():
        low, high = cpu_randn(1, (4, 1, 8)), cpu_randn(2, (4, 1, 8))
        garbage = a1111_slerp(0.5, low, high, TORCH)
    assert not torch.isfinite(garbage).all() or garbage.abs().max() > 1e3


def test_a1111_slerp_with_seed_resize():
    """ImageRNG.first with "resize seed from": the slerp runs on the small noise, which is
    pasted into the centre of the seed's full-size noise."""
    rng = np.random.default_rng(34)
    for _ in range(15):
        c, h, w = 4, int(rng.integers(4, 24)), int(rng.integers(4, 24))
        rh, rw = int(rng.integers(2, 30)), int(rng.integers(1, 30))
        seed, subseed, strength = (
            int(rng.integers(0, 2**32)),
            int(rng.integers(0, 2**32)),
            float(rng.uniform(0, 1)),
        )
        ours = noise.sample_noise(
            (1, c, h, w),
            [seed],
            seed_mode="a1111",
            subseeds=[subseed],
            subseed_strength=strength,
            seed_resize_from=(rw, rh),
        )
        small = a1111_slerp(
            strength, cpu_randn(seed, (c, rh, rw)), cpu_randn(subseed, (c, rh, rw)), EXACT
        )
        x = cpu_randn(seed, (c, h, w))
        dx, dy = (w - rw) // 2, (h - rh) // 2
        ww, hh = (rw if dx >= 0 else rw + 2 * dx), (rh if dy >= 0 else rh + 2 * dy)
        tx, ty, sx, sy = max(dx, 0), max(dy, 0), max(-dx, 0), max(-dy, 0)
        x[:, ty : ty + hh, tx : tx + ww] = small[:, sy : sy + hh, sx : sx + ww]
        if rw == 1:
            np.testing.assert_allclose(ours[0], x.numpy(), rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(ours[0], x.numpy())
