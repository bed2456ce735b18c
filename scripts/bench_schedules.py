#!/usr/bin/env python
"""sigmaserve.get_schedule versus diffusers, side by side in one run.

Bare rows: for every preset, the diffusers side constructs the preset's scheduler class from the
preset's scheduler config (``Scheduler.from_config(config)``) and calls ``set_timesteps``; the
sigmaserve side calls ``sigmaserve.get_schedule(..., pipeline=False)`` with the same class,
preset and step count. A few popular non-default samplers follow the presets.

Pipeline rows: what each preset's diffusers pipeline does before its denoising loop, with the
pipeline module's own helpers (``from_config``, then the pipeline's sigmas and ``calculate_shift``
where it has them, then its ``retrieve_timesteps``, or ``set_timesteps`` for Wan), against
``sigmaserve.get_schedule(None, n, preset=..., width=..., height=..., num_frames=...)``.

Each side is timed as the best of many short interleaved rounds of repeated calls
(``time.perf_counter``), and the tables print the per-call times and the ratio.

Usage: python scripts/bench_schedules.py [--steps 30] [--budget 2.0] [--round-ms 2.0]

Both sides run in many short interleaved rounds and the best round of each is reported, which
filters out interference from other processes on a shared machine.
"""

from __future__ import annotations

import os

# One thread for every math library: on a small shared machine idle BLAS/OpenMP worker threads
# only add noise (torch is also set to one thread below, for the diffusers side).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import sigmaserve  # noqa: E402
from sigmaserve.schedules import list_presets  # noqa: E402


def calibrate(fn: Callable[[], Any], round_time: float) -> int:
    """How many calls make one round of about ``round_time`` seconds (at least one)."""
    fn()  # warm up (imports, caches)
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - start >= round_time:
            return calls
        calls *= 2


def best_per_call(sides: list[Callable[[], Any]], budget: float, round_time: float) -> list[float]:
    """Lowest mean seconds per call of each side over many short, interleaved rounds.

    Rounds of a few milliseconds fit inside one scheduler time slice, so on a shared machine
    some rounds run undisturbed; interleaving exposes both sides to the same conditions.
    """
    calls = [calibrate(fn, round_time) for fn in sides]
    best = [float("inf")] * len(sides)
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline:
        for i, fn in enumerate(sides):
            start = time.perf_counter()
            for _ in range(calls[i]):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / calls[i])
    return best


def rows(steps: int) -> list[tuple[str, str, str | None, dict[str, Any], int]]:
    """(label, scheduler class, preset, extras, steps) for each benchmark row."""
    out = []
    for name, info in list_presets().items():
        extras = {"mu": 1.15} if info["config"].get("use_dynamic_shifting") else {}
        n = 4 if name == "sdxl-turbo" else steps
        out.append((f"preset {name}", info["class_name"], name, extras, n))
    out += [
        (
            "sd15 DPM++ 2M Karras",
            "DPMSolverMultistepScheduler",
            "sd15",
            {"use_karras_sigmas": True},
            steps,
        ),
        ("sd15 Euler a", "EulerAncestralDiscreteScheduler", "sd15", {}, steps),
        ("sdxl UniPC", "UniPCMultistepScheduler", "sdxl", {}, steps),
        ("sd15 KDPM2 Karras", "KDPM2DiscreteScheduler", "sd15", {"use_karras_sigmas": True}, steps),
    ]
    return out


def diffusers_call(
    cls: Any, preset: str | None, extras: dict[str, Any], n: int
) -> Callable[[], Any]:
    config = dict(list_presets()[preset]["config"]) if preset else {}
    config.update({k: v for k, v in extras.items() if k != "mu"})
    kwargs = {"mu": extras["mu"]} if "mu" in extras else {}

    def call() -> Any:
        scheduler = cls.from_config(config)
        scheduler.set_timesteps(n, **kwargs)
        return scheduler.timesteps

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per row")
    parser.add_argument("--round-ms", type=float, default=2.0, help="length of one round")
    parser.add_argument(
        "--tables", choices=("both", "bare", "pipeline"), default="both", help="which tables"
    )
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    import diffusers
    import torch

    diffusers.utils.logging.set_verbosity_error()
    torch.set_num_threads(1)

    header = (
        f"{'case':<28} {'class':<34} {'n':>4} {'diffusers':>12} {'sigmaserve':>12} {'ratio':>8}"
    )
    print(
        f"diffusers {diffusers.__version__}, torch {torch.__version__}, "
        f"sigmaserve {sigmaserve.__version__}"
    )
    if args.tables == "pipeline":
        pipeline_table(args)
        return
    print(header)
    print("-" * len(header))
    preset_ratios = []
    for label, cls_name, preset, extras, n in rows(args.steps):
        cls = getattr(diffusers, cls_name)

        def ours_call(
            cls_name: str = cls_name, n: int = n, preset: Any = preset, extras: Any = extras
        ) -> Any:
            return sigmaserve.get_schedule(cls_name, n, preset=preset, pipeline=False, **extras)

        theirs, ours = best_per_call(
            [diffusers_call(cls, preset, extras, n), ours_call], args.budget, args.round_ms / 1000
        )
        ratio = theirs / ours
        if label.startswith("preset"):
            preset_ratios.append(ratio)
        print(
            f"{label:<28} {cls_name:<34} {n:>4} "
            f"{theirs * 1e6:>10.1f}us {ours * 1e6:>10.1f}us {ratio:>7.0f}x"
        )
    print("-" * len(header))
    print(
        f"presets: min ratio {min(preset_ratios):.0f}x, "
        f"median {statistics.median(preset_ratios):.0f}x (diffusers from_config + set_timesteps "
        f"vs sigmaserve.get_schedule, per call, one torch thread)"
    )
    if args.tables == "both":
        pipeline_table(args)


# ---- pipeline level ---------------------------------------------------------------------------

# A size per preset: the pipeline's default for images, a short clip for videos (the schedule
# only depends on it through mu).
PIPELINE_SIZES: dict[str, tuple[int, int, int | None]] = {
    "flux-dev": (1360, 768, None),
    "flux-schnell": (1024, 1024, None),
    "ltx-video": (704, 480, 161),
}


def pipeline_module(info: dict[str, Any]) -> Any:
    """The diffusers module of a preset's pipeline class (its own helpers)."""
    import importlib

    import diffusers

    return importlib.import_module(getattr(diffusers, info["pipeline"]).__module__)


def pipeline_call(name: str, info: dict[str, Any], n: int) -> Callable[[], Any]:
    """What the preset's pipeline runs before its loop, with its own module's helpers."""
    import diffusers
    import numpy as np

    module = pipeline_module(info)
    cls = getattr(diffusers, info["class_name"])
    config = dict(info["config"])
    width, height, frames = PIPELINE_SIZES.get(
        name, (info["width"], info["height"], info["num_frames"])
    )
    convention = info["convention"]

    def shift(seq: int, scheduler: Any, max_shift: float) -> float:
        c = scheduler.config
        return module.calculate_shift(
            seq,
            c.get("base_image_seq_len", 256),
            c.get("max_image_seq_len", 4096),
            c.get("base_shift", 0.5),
            c.get("max_shift", max_shift),
        )

    def call() -> Any:
        scheduler = cls.from_config(config)
        if info["pipeline"] == "WanPipeline":
            scheduler.set_timesteps(n)
        elif convention == "flux_sigmas_mu":
            sigmas = np.linspace(1.0, 1 / n, n)
            mu = shift((height // 16) * (width // 16), scheduler, 1.15)
            module.retrieve_timesteps(scheduler, n, "cpu", sigmas=sigmas, mu=mu)
        elif convention == "ltx_sigmas_mu":
            seq = ((frames - 1) // 8 + 1) * (height // 32) * (width // 32)
            sigmas = np.linspace(1.0, 1 / n, n)
            mu = shift(seq, scheduler, 1.15)
            module.retrieve_timesteps(scheduler, n, "cpu", sigmas=sigmas, mu=mu)
        elif convention == "hunyuan_sigmas":
            sigmas = np.linspace(1.0, 0.0, n + 1)[:-1]
            module.retrieve_timesteps(scheduler, n, "cpu", sigmas=sigmas)
        elif convention == "mochi_linear_quadratic":
            sigmas = np.array(module.linear_quadratic_schedule(n, 0.025))
            module.retrieve_timesteps(scheduler, n, "cpu", sigmas=sigmas)
        elif convention == "sd3_dynamic_shift" and scheduler.config.get("use_dynamic_shifting"):
            mu = shift((height // 16) * (width // 16), scheduler, 1.16)
            module.retrieve_timesteps(scheduler, n, "cpu", mu=mu)
        else:
            module.retrieve_timesteps(scheduler, n, "cpu")
        return scheduler.timesteps

    return call


def pipeline_table(args: argparse.Namespace) -> None:
    header = (
        f"{'pipeline (preset)':<40} {'scheduler':<32} {'n':>4} {'diffusers':>12} "
        f"{'sigmaserve':>12} {'ratio':>8}"
    )
    print()
    print(header)
    print("-" * len(header))
    ratios = []
    for name, info in list_presets().items():
        n = info["steps"]
        width, height, frames = PIPELINE_SIZES.get(
            name, (info["width"], info["height"], info["num_frames"])
        )

        def ours_call(
            name: str = name,
            n: int = n,
            size: tuple[int, int, int | None] = (width, height, frames),
        ) -> Any:
            return sigmaserve.get_schedule(
                None, n, preset=name, width=size[0], height=size[1], num_frames=size[2]
            )

        theirs, ours = best_per_call(
            [pipeline_call(name, info, n), ours_call], args.budget, args.round_ms / 1000
        )
        ratio = theirs / ours
        ratios.append(ratio)
        label = f"{info['pipeline']} ({name})"
        print(
            f"{label:<40} {info['class_name']:<32} {n:>4} "
            f"{theirs * 1e6:>10.1f}us {ours * 1e6:>10.1f}us {ratio:>7.0f}x"
        )
    print("-" * len(header))
    print(
        f"pipelines: min ratio {min(ratios):.0f}x, median {statistics.median(ratios):.0f}x "
        "(diffusers from_config + the pipeline's sigmas/mu + retrieve_timesteps vs "
        "sigmaserve.get_schedule at the pipeline level, per call, one torch thread)"
    )


if __name__ == "__main__":
    main()
