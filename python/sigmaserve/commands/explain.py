"""``sigmaserve explain``: where init_noise_sigma (SD v1's famous 14.6146) comes from."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from sigmaserve.plots import training_sigmas

BETA_FORMULAS = {
    "scaled_linear": "betas = linspace(sqrt(beta_start), sqrt(beta_end), N) ** 2",
    "linear": "betas = linspace(beta_start, beta_end, N)",
    "squaredcos_cap_v2": "betas from the cosine alpha-bar (Nichol & Dhariwal), capped at 0.999",
    "sigmoid": "betas = sigmoid(linspace(-6, 6, N)) * (beta_end - beta_start) + beta_start",
}


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "explain",
        help="walk the derivation of init_noise_sigma with the actual numbers",
        description="Derive a model family's training sigmas and init_noise_sigma step by step "
        "(betas, alphas, their cumulative product, sigma = sqrt((1 - acp) / acp)), show the "
        "value each scheduler family starts from, and what another initial scale does.",
    )
    parser.add_argument("--preset", default="sd15", help="model family (default sd15)")
    parser.add_argument("--steps", type=int, default=50, help="num_inference_steps (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample noise (default 0)")
    parser.add_argument("--plot", metavar="PNG", help="plot the noise statistics per scale")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    text, scales, noise = explain(args.preset, args.steps, args.seed)
    sys.stdout.write(text)
    if args.plot:
        from sigmaserve.plots import plot_noise_statistics

        plot_noise_statistics(scales, noise, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def explain(preset: str, steps: int, seed: int) -> tuple[str, dict[str, float], np.ndarray]:
    """The explanation text, the scales it compares and the unit noise it measured them on."""
    from sigmaserve.latents import sample_init_latents
    from sigmaserve.schedules import get_schedule

    lms = get_schedule("LMSDiscreteScheduler", steps, preset=preset)
    config = lms.config
    betas = np.asarray(lms.betas, dtype=np.float64)
    acp = np.asarray(lms.alphas_cumprod, dtype=np.float64)
    sigmas = training_sigmas(acp)
    n = len(betas)
    kind = str(config.get("beta_schedule"))
    leading = get_schedule(
        "EulerDiscreteScheduler", steps, preset=preset, timestep_spacing="leading"
    )
    ddim = get_schedule("DDIMScheduler", steps, preset=preset)
    out = [
        f"Preset {preset}: {n} training steps, beta_schedule={kind}, "
        f"beta_start={config.get('beta_start')}, beta_end={config.get('beta_end')}",
        "",
        f"1. {BETA_FORMULAS.get(kind, 'betas as configured')}",
        f"   betas[0] = {betas[0]:.6g}, betas[{n - 1}] = {betas[-1]:.6g}",
        "2. alphas = 1 - betas; alphas_cumprod (acp) = cumprod(alphas), the signal fraction left",
        f"   acp[0] = {acp[0]:.6g}, acp[{n - 1}] = {acp[-1]:.6g}",
        "3. sigma_t = sqrt((1 - acp_t) / acp_t), the noise-to-signal ratio at step t",
        f"   sigma_0 = {sigmas[0]:.6g}, sigma_{n - 1} = {sigmas[-1]:.6g}  <- the maximum",
        "4. k-diffusion-style schedulers reverse this table and append 0: sampling walks from "
        f"{sigmas[-1]:.6g} down to 0.",
        "5. init_noise_sigma, the factor unit Gaussian noise is scaled by before the first step:",
        f"   - linspace or trailing spacing: the largest sigma itself. "
        f"LMSDiscreteScheduler, {steps} steps: {lms.init_noise_sigma:.6g}",
        "   - leading spacing: sqrt(max_sigma^2 + 1), max_sigma being the sigma at the first "
        f"spaced timestep ({int(np.asarray(leading.timesteps)[0])}). "
        f"EulerDiscreteScheduler(leading), {steps} steps: {leading.init_noise_sigma:.6g}",
        "   - DDIM family (alpha space, x_T ~ N(0, 1)): "
        f"DDIMScheduler: {ddim.init_noise_sigma:.6g}",
    ]
    unit = sample_init_latents(shape=(1, 4, 64, 64), seeds=seed, preset=None).array
    scales = {
        "1.0": 1.0,
        "init_noise_sigma": lms.init_noise_sigma,
        "sqrt(max^2+1)": float(np.sqrt(lms.init_noise_sigma**2 + 1)),
    }
    out += [
        "6. What another initial scale does: the sampler treats its input as "
        "x_0 + sigma_max * noise.",
        "   Scaled by 1.0 the latent is far too quiet for sigma_max, so the first steps remove "
        "noise",
        "   that is not there and images come out flat and washed out; scaled by more, residual",
        "   noise survives to the end. Measured on the seed's noise:",
    ]
    out += [
        f"   x{value:<10.6g} ({name}): std {float(np.std(unit * value)):.5g}"
        for name, value in scales.items()
    ]
    return "\n".join(out) + "\n", scales, unit
