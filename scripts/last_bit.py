#!/usr/bin/env python3
"""Measure, on this machine, which sigmaserve outputs equal torch's bit for bit and by how much
the others differ (the figures in README "The last bit" and docs/seeds.md).

sigmaserve rounds float32 sqrt/exp/log/pow correctly; torch's CPU kernels do not on every CPU
(x86 wheels route them through MKL). This script prints how often torch's float32 functions
differ from correctly rounded ones here, then what that does to initial-noise scales, sigmas and
scaled latents, and confirms that noise and integer timesteps are bit-identical regardless.
About half a minute on two cores.

    python scripts/last_bit.py
"""

from __future__ import annotations

import warnings

import numpy as np
import sigmaserve
import torch
from diffusers import EulerDiscreteScheduler

warnings.filterwarnings("ignore")


def torch_math() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(1e-3, 20.0, 1_000_000).astype(np.float32)
    t = torch.from_numpy(x)
    cases = {
        "sqrt": (torch.sqrt(t), np.sqrt(x.astype(np.float64))),
        "exp": (torch.exp(t / 8), np.exp((x / np.float32(8)).astype(np.float64))),
        "log": (torch.log(t), np.log(x.astype(np.float64))),
        "pow 1/7": (t ** (1 / 7), np.power(x.astype(np.float64), float(np.float32(1 / 7)))),
    }
    cap = torch.backends.cpu.get_cpu_capability()
    print(
        f"torch {torch.__version__}, CPU capability {cap}, MKL {torch.backends.mkl.is_available()}"
    )
    for name, (got, exact) in cases.items():
        share = float(np.mean(got.numpy() != exact.astype(np.float32)))
        print(
            f"  float32 {name:8s}: {share:6.1%} of 1e6 random inputs differ from correctly rounded"
        )


def init_noise_scales() -> None:
    s = sigmaserve.ecosystem.ecosystem_schedule("comfyui:simple", 20)
    sigma = torch.tensor(float(s.sigmas[0]), dtype=torch.float32)
    comfy = float(torch.sqrt(1.0 + sigma**2.0))
    print(
        f"ComfyUI full-denoise noise scale: torch {comfy:.9g}, sigmaserve {s.init_noise_sigma:.9g}"
    )
    # SDXL's scheduler config uses "leading" spacing, SD 1.5 pipelines commonly "linspace".
    for spacing in ("leading", "linspace"):
        differ, worst = [], 0
        for n in range(1, 151):
            sched = EulerDiscreteScheduler(
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                timestep_spacing=spacing,
                steps_offset=1 if spacing == "leading" else 0,
            )
            sched.set_timesteps(n)
            theirs = np.float32(sched.init_noise_sigma)
            ours = sigmaserve.get_schedule(
                "EulerDiscreteScheduler",
                n,
                preset=None,
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                timestep_spacing=spacing,
                steps_offset=1 if spacing == "leading" else 0,
            )
            mine = np.float32(ours.init_noise_sigma)
            if mine != theirs:
                differ.append(n)
                worst = max(worst, abs(int(mine.view(np.int32)) - int(theirs.view(np.int32))))
            assert np.array_equal(np.asarray(ours.timesteps), sched.timesteps.numpy())
        print(
            f"Euler init_noise_sigma ({spacing}): differs at {len(differ)} of 150 step counts"
            f" (up to {worst} ulp){', e.g. ' + str(differ[:8]) if differ else ''};"
            " timesteps identical"
        )


def latents() -> None:
    shape, seed, steps = (1, 4, 128, 128), 42, 28
    sched = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
        steps_offset=1,
    )
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(shape, generator=g)
    unscaled = sigmaserve.sample_init_latents(shape=shape, seeds=seed, seed_mode="batch", sigma=1.0)
    print(f"noise (sigma=1.0) bit-identical: {np.array_equal(unscaled.array, noise.numpy())}")
    want = (noise * sched.init_noise_sigma).numpy()
    ours = sigmaserve.sample_init_latents(
        shape=shape,
        seeds=seed,
        seed_mode="batch",
        scheduler="EulerDiscreteScheduler",
        num_inference_steps=steps,
        preset=None,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
        steps_offset=1,
    )
    share = float(np.mean(ours.array != want))
    print(
        f"latents scaled by sigmaserve's init_noise_sigma ({steps} steps, leading): "
        f"{share:.1%} of values differ from noise * diffusers' init_noise_sigma"
    )
    own = sigmaserve.sample_init_latents(
        shape=shape, seeds=seed, seed_mode="batch", sigma=sched.init_noise_sigma
    )
    print(
        "latents with sigma=<diffusers' own init_noise_sigma>: bit-identical",
        np.array_equal(own.array, want),
    )
    handoff = unscaled.to_torch() * sched.init_noise_sigma
    print(
        "unscaled latents * the pipeline's scale: bit-identical",
        np.array_equal(handoff.numpy(), want),
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch_math()
    init_noise_scales()
    latents()
