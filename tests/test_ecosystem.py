# ruff: noqa: E501  (reference tables from the spec, one row per line)
"""Ecosystem schedules against upstream: k-diffusion called at run time, scipy for the beta
quantiles both UIs use, and the spec's reference numbers (schedules-ecosystem.md §7) for ComfyUI
and AUTOMATIC1111, which cannot be installed here."""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import sigmaserve
from sigmaserve import _core

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "ecosystem_schedule"),
    reason="extension built without the ecosystem module (rust_py/src/lib.rs hook-up)",
)

torch = pytest.importorskip("torch")
scipy_stats = pytest.importorskip("scipy.stats")

from sigmaserve.ecosystem import (  # noqa: E402
    compare_schedules,
    ecosystem_schedule,
    list_ecosystem_schedules,
)


def _load_kdiffusion() -> types.SimpleNamespace:
    """k_diffusion/sampling.py and external.py from the installed k-diffusion==0.1.1.post1,
    without the package __init__ (which imports training-only dependencies)."""
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(
            "k-diffusion not installed (pip install --no-deps -r requirements-kdiffusion.txt)"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    saved = {k: sys.modules.get(k) for k in ("k_diffusion", "k_diffusion.utils", "torchdiffeq")}
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = [str(root)]
    sys.modules["k_diffusion"] = pkg
    sys.modules["k_diffusion.utils"] = types.ModuleType("k_diffusion.utils")
    if importlib.util.find_spec("torchdiffeq") is None:
        stub = types.ModuleType("torchdiffeq")
        stub.odeint = None  # type: ignore[attr-defined]
        sys.modules["torchdiffeq"] = stub
    mods = {}
    try:
        for name in ("sampling", "external"):
            s = importlib.util.spec_from_file_location(f"k_diffusion.{name}", root / f"{name}.py")
            assert s is not None and s.loader is not None
            m = importlib.util.module_from_spec(s)
            sys.modules[f"k_diffusion.{name}"] = m
            setattr(pkg, name, m)
            s.loader.exec_module(m)
            mods[name] = m
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
        for name in ("sampling", "external"):
            sys.modules.pop(f"k_diffusion.{name}", None)
    return types.SimpleNamespace(**mods)


@pytest.fixture(scope="module")
def kd() -> types.SimpleNamespace:
    return _load_kdiffusion()


def ldm_discrete_schedule(kd: types.SimpleNamespace, beta_end: float = 0.012) -> object:
    """k-diffusion's DiscreteSchedule over an LDM model's float32 alphas_cumprod (what
    CompVisDenoiser, and so AUTOMATIC1111, builds)."""
    betas = torch.linspace(0.00085**0.5, beta_end**0.5, 1000, dtype=torch.float64) ** 2
    acp = torch.tensor(np.cumprod(1.0 - betas.numpy(), axis=0), dtype=torch.float32)
    return kd.external.DiscreteSchedule(((1 - acp) / acp) ** 0.5, False)


# torch's float32 pow/exp/log/sqrt are not correctly rounded on x86 wheels (1-2 ulp); ours are.
ULP_RTOL = 5e-7

STEPS = [1, 2, 3, 5, 10, 20, 33, 50, 100]


@pytest.mark.parametrize("n", STEPS)
@pytest.mark.parametrize("preset", ["sd15", "sdxl", "sd21-v"])
def test_kdiffusion_functions_match_upstream(kd, n, preset):
    ds = ldm_discrete_schedule(kd)
    smin, smax = ds.sigma_min.item(), ds.sigma_max.item()
    cases = [
        ("kdiffusion:karras", {}, kd.sampling.get_sigmas_karras(n, smin, smax)),
        ("kdiffusion:karras", {"rho": 3.0}, kd.sampling.get_sigmas_karras(n, smin, smax, rho=3.0)),
        (
            "kdiffusion:karras",
            {"sigma_min": 0.1, "sigma_max": 10.0},
            kd.sampling.get_sigmas_karras(n, 0.1, 10.0),
        ),
        ("kdiffusion:exponential", {}, kd.sampling.get_sigmas_exponential(n, smin, smax)),
        ("kdiffusion:polyexponential", {}, kd.sampling.get_sigmas_polyexponential(n, smin, smax)),
        (
            "kdiffusion:polyexponential",
            {"rho": 2.0},
            kd.sampling.get_sigmas_polyexponential(n, smin, smax, rho=2.0),
        ),
        (
            "kdiffusion:polyexponential",
            {"rho": 3.5},
            kd.sampling.get_sigmas_polyexponential(n, smin, smax, rho=3.5),
        ),
        ("kdiffusion:vp", {}, kd.sampling.get_sigmas_vp(n)),
        (
            "kdiffusion:vp",
            {"beta_d": 10.0, "beta_min": 0.2, "eps_s": 0.01},
            kd.sampling.get_sigmas_vp(n, 10.0, 0.2, 0.01),
        ),
        ("kdiffusion:discrete", {}, ds.get_sigmas(n)),
        ("kdiffusion:get_sigmas", {}, ds.get_sigmas(n)),
        ("a1111:uniform", {}, ds.get_sigmas(n)),
        ("a1111:karras", {}, kd.sampling.get_sigmas_karras(n, smin, smax)),
        ("a1111:exponential", {}, kd.sampling.get_sigmas_exponential(n, smin, smax)),
        ("a1111:polyexponential", {}, kd.sampling.get_sigmas_polyexponential(n, smin, smax)),
    ]
    for name, opts, want in cases:
        got = ecosystem_schedule(name, n, preset=preset, **opts)
        assert got.sigmas.dtype == np.float32
        # With the model's own range, torch's table sigma_min is 1 ulp off IEEE sqrt, and
        # (x^(1/rho) ...)^rho amplifies that to a few 1e-6; an explicit range is ulp-exact.
        explicit = "sigma_min" in opts or name in ("kdiffusion:vp",)
        rtol = ULP_RTOL * 4 if explicit else 5e-6
        np.testing.assert_allclose(
            got.sigmas, want.numpy(), rtol=rtol, atol=0, err_msg=f"{name} {opts}"
        )
        if name.endswith(("karras", "exponential", "polyexponential")):
            exact = ecosystem_schedule(
                name, n, preset=preset, **{"sigma_min": smin, "sigma_max": smax, **opts}
            )
            np.testing.assert_allclose(
                exact.sigmas, want.numpy(), rtol=ULP_RTOL * 4, atol=0, err_msg=f"{name} {opts}"
            )
        if name != "kdiffusion:vp":
            # The fractional timesteps A1111 / k-diffusion feed the model.
            t = ds.sigma_to_t(torch.from_numpy(np.array(got.sigmas[:-1]))).numpy()
            np.testing.assert_allclose(got.timesteps, t, atol=2e-3, err_msg=name)


def test_kdiffusion_quantized_timesteps(kd):
    ds = kd.external.DiscreteSchedule(ldm_discrete_schedule(kd).sigmas, True)
    got = ecosystem_schedule("kdiffusion:karras", 20, quantize=True)
    want = ds.sigma_to_t(torch.from_numpy(np.array(got.sigmas[:-1]))).numpy()
    np.testing.assert_array_equal(got.timesteps, want.astype(np.float32))


def test_a1111_discard_and_automatic(kd):
    ds = ldm_discrete_schedule(kd)
    smin, smax = ds.sigma_min.item(), ds.sigma_max.item()
    k = kd.sampling.get_sigmas_karras(21, smin, smax)
    want = torch.cat([k[:-2], k[-1:]]).numpy()
    for opts in (
        {"sampler": "DPM2"},
        {"sampler": "dpm2 a"},
        {"always_discard_next_to_last_sigma": True, "sampler": "DPM++ 2M"},
    ):
        got = ecosystem_schedule("a1111:automatic", 20, **opts)
        np.testing.assert_allclose(got.sigmas, want, rtol=5e-6)
    e = ecosystem_schedule("a1111:automatic", 20, sampler="DPM++ 2M SDE")
    np.testing.assert_allclose(
        e.sigmas, kd.sampling.get_sigmas_exponential(20, smin, smax).numpy(), rtol=5e-6
    )
    u = ecosystem_schedule("a1111:automatic", 20, sampler="Euler a")
    np.testing.assert_allclose(u.sigmas, ds.get_sigmas(20).numpy(), rtol=ULP_RTOL * 4)


# ---- ComfyUI: spec §7 reference numbers (SD1.5, 20 steps) ------------------------------------

# fmt: off
COMFY_KARRAS_20 = [14.614643, 11.725368, 9.340202, 7.383618, 5.789413, 4.499835, 3.464747, 2.640841, 1.990916, 1.483211, 1.090786, 0.790946, 0.564722, 0.396390, 0.273038, 0.184168, 0.121341, 0.077860, 0.048481, 0.029167, 0]
COMFY_NORMAL_20 = [14.614640, 10.746800, 8.081519, 6.204935, 4.855653, 3.865378, 3.123761, 2.557166, 2.115658, 1.764822, 1.480581, 1.245813, 1.048142, 0.878428, 0.729719, 0.596434, 0.473585, 0.355545, 0.232164, 0.029167, 0]
COMFY_KARRAS_T = [999, 962, 921, 876, 827, 772, 710, 640, 561, 474, 380, 285, 197, 123, 69, 35, 15, 6, 2, 0]
SPEC_ROWS = {
    "comfyui:exponential": [14.614640, 10.536307, 7.596066, 5.476323, 3.948111, 2.846359, 2.052060, 1.479416, 1.066573, 0.768937, 0.554359, 0.399661, 0.288132, 0.207727, 0.149759, 0.107967, 0.077838, 0.056117, 0.040457, 0.029167, 0],
    "comfyui:sgm_uniform": [14.614640, 10.907317, 8.307171, 6.447690, 5.092408, 4.086081, 3.325069, 2.739083, 2.279731, 1.913210, 1.615580, 1.369643, 1.162865, 0.985955, 0.831884, 0.695149, 0.571189, 0.455736, 0.343705, 0.225452, 0],
    "comfyui:simple": [14.614641, 10.904236, 8.302803, 6.442955, 5.087763, 4.081729, 3.321083, 2.735469, 2.276463, 1.910251, 1.612886, 1.367173, 1.160578, 0.983817, 0.829860, 0.693205, 0.569285, 0.453819, 0.341674, 0.223003, 0],
    "comfyui:ddim_uniform": [11.028331, 8.390685, 6.506398, 5.134431, 4.116696, 3.347764, 2.756196, 2.292854, 1.923443, 1.623692, 1.376179, 1.168216, 0.990409, 0.835653, 0.698398, 0.574050, 0.458333, 0.346187, 0.228147, 0.041314, 0],
    "comfyui:beta": [14.614641, 13.515696, 11.542770, 9.388924, 7.371844, 5.686592, 4.372802, 3.374725, 2.615236, 2.047312, 1.618279, 1.284621, 1.027329, 0.821221, 0.654885, 0.515391, 0.395510, 0.291284, 0.199059, 0.111419, 0],
    "comfyui:kl_optimal": [14.614633, 6.807148, 4.401471, 3.221912, 2.514688, 2.038659, 1.692815, 1.427374, 1.214932, 1.039140, 0.889614, 0.759422, 0.643738, 0.539076, 0.442829, 0.352985, 0.267937, 0.186359, 0.107109, 0.029167, 0],
    "comfyui:linear_quadratic": [14.614641, 14.578105, 14.541568, 14.505032, 14.468495, 14.431958, 14.395422, 14.358885, 14.322349, 14.285812, 14.249275, 14.073899, 13.620845, 12.890114, 11.881703, 10.595615, 9.031848, 7.190403, 5.071280, 2.674479, 0],
    "comfyui:laplace": [14.614641, 3.082060, 2.179398, 1.779485, 1.541085, 1.378392, 1.258296, 1.164957, 1.089718, 1.027397, 0.973334, 0.917668, 0.858401, 0.794726, 0.725483, 0.648893, 0.561960, 0.458842, 0.324458, 0.029167],
    "comfyui:align_your_steps": [14.614641, 9.727467, 6.474576, 5.001565, 3.863675, 3.226626, 2.694615, 2.253258, 1.884192, 1.620889, 1.394380, 1.159544, 0.964258, 0.793128, 0.652369, 0.509389, 0.397746, 0.245495, 0.151523, 0.066479, 0],
    "ays:sd15": [14.614641, 9.727467, 6.474576, 5.001565, 3.863675, 3.226626, 2.694615, 2.253258, 1.884192, 1.620889, 1.394380, 1.159544, 0.964258, 0.793128, 0.652369, 0.509389, 0.397746, 0.245495, 0.151523, 0.066479, 0],
    "a1111:align_your_steps": [14.615000, 9.521713, 6.301180, 4.800019, 3.717901, 3.078137, 2.548905, 2.111525, 1.770252, 1.511015, 1.266044, 1.041299, 0.851409, 0.693412, 0.544092, 0.420168, 0.265765, 0.159920, 0.069351, 0.029000, 0],
}


def test_comfyui_sd15_20_normal_and_karras_reproduce_spec():
    k = ecosystem_schedule("comfyui:karras", 20, preset="sd15")
    np.testing.assert_allclose(k.sigmas, COMFY_KARRAS_20, atol=1.5e-6, rtol=0)
    np.testing.assert_array_equal(k.timesteps, np.array(COMFY_KARRAS_T, dtype=np.float32))
    n = ecosystem_schedule("ComfyUI:NORMAL", 20, preset="sd15")
    np.testing.assert_allclose(n.sigmas, COMFY_NORMAL_20, atol=1.5e-6, rtol=0)
    assert n.init_noise == k.init_noise == "sqrt1p"
    # spec §1.1: sqrt(1 + sigma_max^2) = 14.648813504855193 (ComfyUI computes it in float32).
    assert n.init_noise_sigma == pytest.approx(14.648813504855193, abs=2e-6)
    # normal's first sigma is exp(log_sigmas[999]) (14.614640), karras starts at the table end.
    assert n.sigmas[0] == pytest.approx(14.614640, abs=1e-6)


@pytest.mark.parametrize("name", sorted(SPEC_ROWS))
def test_spec_rows(name):
    s = ecosystem_schedule(name, 20, preset="sd15")
    np.testing.assert_allclose(s.sigmas, SPEC_ROWS[name], atol=2e-6, rtol=0)


def test_comfyui_initial_latent_seed0_matches_comfyui_formula():
    """ComfyUI: noise = torch.randn on the CPU after manual_seed(seed), scaled by
    sqrt(1 + sigma_0^2) in float32 at full denoise (spec §3.4, §3.5)."""
    torch.manual_seed(0)
    noise = torch.randn([1, 4, 64, 64], dtype=torch.float32)
    for name, sigma0 in (("comfyui:normal", 14.614641189575195), ("comfyui:karras", COMFY_KARRAS_20[0])):
        s = ecosystem_schedule(name, 20, preset="sd15")
        assert s.sigmas[0] == pytest.approx(sigma0, abs=1.5e-6)
        sigma = torch.tensor(float(s.sigmas[0]), dtype=torch.float32)
        want = (noise * torch.sqrt(1.0 + sigma**2.0)).numpy()
        ours = sigmaserve.randn((1, 4, 64, 64), 0) * np.float32(s.init_noise_sigma)
        np.testing.assert_array_equal(ours, want)
        try:
            latents = sigmaserve.sample_init_latents(
                shape=(1, 4, 64, 64), seeds=0, seed_mode="batch", scheduler=name, num_inference_steps=20, preset="sd15"
            )
        except sigmaserve.InvalidArgumentError as exc:
            # get_schedule does not route "<tool>:<name>" yet (core hook-up pending).
            pytest.skip(f"sample_init_latents cannot resolve {name} yet: {exc}")
        np.testing.assert_array_equal(latents.array, want)
        assert latents.init_noise_sigma == s.init_noise_sigma


# ---- beta quantiles against scipy (the function both UIs call) -------------------------------


@pytest.mark.parametrize("alpha,beta", [(0.6, 0.6), (1.0, 1.0), (0.5, 2.0), (2.0, 0.5), (3.0, 3.0)])
def test_beta_schedules_match_scipy_formulas(alpha, beta):
    s = ecosystem_schedule("comfyui:beta", 20)
    for n in [*range(1, 61), 100, 250]:
        ts = np.rint(scipy_stats.beta.ppf(1 - np.linspace(0, 1, n, endpoint=False), alpha, beta) * 999)
        keep = [t for i, t in enumerate(ts) if i == 0 or t != ts[i - 1]]
        got = ecosystem_schedule("comfyui:beta", n, alpha=alpha, beta=beta)
        np.testing.assert_array_equal(got.timesteps, np.array(keep, dtype=np.float32), err_msg=f"n={n}")
        assert got.num_inference_steps == len(keep)
        smin, smax = s.model_sigma_range
        ppf = [scipy_stats.beta.ppf(x, alpha, beta) for x in 1 - np.linspace(0, 1, n)]
        want = np.array([smin + x * (smax - smin) for x in ppf] + [0.0], dtype=np.float32)
        a = ecosystem_schedule(
            "a1111:beta", n, beta_dist_alpha=alpha, beta_dist_beta=beta, sigma_min=smin, sigma_max=smax
        )
        np.testing.assert_allclose(a.sigmas, want, rtol=2e-7, err_msg=f"n={n}")


# ---- invariants over every name --------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 7, 20, 51])
def test_invariants_every_name(n):
    for tool, names in list_ecosystem_schedules().items():
        for name in names:
            if name == "sd_turbo" and n > 10:
                continue
            s = ecosystem_schedule(f"{tool}:{name}", n, preset=None)
            assert np.all(np.diff(s.sigmas) <= 0), s.scheduler
            ends_zero = s.scheduler not in ("a1111:kl_optimal", "comfyui:laplace")
            assert (s.sigmas[-1] == 0) == ends_zero, s.scheduler
            assert len(s.timesteps) == len(s.sigmas) - 1
            assert s.num_inference_steps == len(s.sigmas) - 1
            assert math.isfinite(s.init_noise_sigma) and s.init_noise_sigma > 0


def test_flow_and_edm_models():
    s = ecosystem_schedule("comfyui:simple", 20, preset="sd3")
    assert s.init_noise == "flow" and s.init_noise_sigma == 1.0
    assert any("flow model" in w for w in s.warnings)
    assert s.timesteps[0] == pytest.approx(1000.0)
    f = ecosystem_schedule("comfyui:karras", 20, preset="flux-dev", width=1344, height=768)
    assert f.config["mu"] == pytest.approx(1.139167, abs=1e-6)
    e = ecosystem_schedule("comfyui:karras", 20, preset="svd")
    assert e.model_sampling == "edm" and e.sigmas[0] == pytest.approx(700.0, rel=1e-6)
    assert e.timesteps[0] == pytest.approx(0.25 * math.log(700.0), rel=1e-6)
    z = ecosystem_schedule("comfyui:normal", 20, zsnr=True)
    assert z.sigmas[0] == pytest.approx(4518.76, abs=0.01)


def test_denoise_and_img2img():
    c = ecosystem_schedule("comfyui:normal", 20, denoise=0.5)
    assert c.num_inference_steps == 20 and c.sigmas[0] == pytest.approx(1.54816, abs=1e-5)
    assert c.init_noise == "sigma" and c.init_noise_sigma == pytest.approx(float(c.sigmas[0]))
    a = ecosystem_schedule("a1111:uniform", 20, denoising_strength=0.5)
    assert a.num_inference_steps == 11 and a.sigmas[0] == pytest.approx(1.764822, abs=3e-6)
    d = ecosystem_schedule("ays:sd15", 10, denoise=0.5)
    np.testing.assert_allclose(d.sigmas, [1.394380, 0.964258, 0.652369, 0.397746, 0.151523, 0], atol=1.5e-6)


def test_compare_schedules_finds_the_big_differences():
    cmp = compare_schedules(["comfyui:normal", "a1111:uniform", "kdiffusion:discrete", "a1111:beta", "comfyui:beta"])
    assert cmp.largest is not None
    worst = {cmp.largest.a, cmp.largest.b}
    assert worst & {"a1111:beta", "comfyui:beta"}
    same = next(d for d in cmp.differences if {d.a, d.b} == {"a1111:uniform", "kdiffusion:discrete"})
    assert same.max_abs == 0.0
    near = next(d for d in cmp.differences if {d.a, d.b} == {"comfyui:normal", "a1111:uniform"})
    # The two float32 tables differ by < 1e-6 absolute (spec §1.1), 1.3e-5 relative at sigma_min.
    assert near.max_abs < 3e-6 and near.max_rel < 2e-5
    # ComfyUI scales its first noise by sqrt(1 + sigma^2), A1111 by sigma.
    assert near.init_noise_sigma[0] == pytest.approx(14.6488135, abs=2e-6)
    assert near.init_noise_sigma[1] == pytest.approx(14.614642, abs=2e-6)
    assert "comfyui:normal" in cmp.table()
    kl = compare_schedules({"comfyui:kl_optimal": {}, "a1111:kl_optimal": {}}, 20)
    assert kl.largest is not None and kl.largest.max_rel > 0.01


def test_errors_name_the_field():
    with pytest.raises(ValueError, match="scheduler"):
        ecosystem_schedule("comfyui:nope", 20)
    with pytest.raises(ValueError, match="bogus"):
        ecosystem_schedule("comfyui:karras", 20, bogus=1)
    with pytest.raises(ValueError, match="rho"):
        ecosystem_schedule("comfyui:karras", 20, rho="x")
    with pytest.raises(ValueError, match="denoise"):
        ecosystem_schedule("comfyui:normal", 20, denoise=0.0)
    with pytest.raises(ValueError, match="num_inference_steps"):
        ecosystem_schedule("comfyui:karras", 0)
    with pytest.raises(ValueError, match="preset"):
        ecosystem_schedule("a1111:karras", 20, preset="sd3")
    with pytest.raises(ValueError, match="schedulers"):
        compare_schedules("comfyui:karras")
