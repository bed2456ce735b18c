"""End-to-end hand-off check on one device: ``python -m sigmaserve.worker.selfcheck --device cuda``.

Writes the tiny random pipelines (SD 1.5, SDXL, SD3, Flux, Wan 2.1 video) to model folders and
loads them as the worker does (``from_pretrained`` with the device's dtype, so modules diffusers
keeps in float32 stay so), starts a NoiseService in-process, and for the schedulers each family's
users run and several seed batches compares the worker's images or frames (service schedule +
latents + generator states) with diffusers run directly with
``torch.Generator("cpu").manual_seed(seed)``, on the same device and dtype. Prints one line per
case and exits non-zero on any mismatch; ``--device cuda`` without a GPU prints SKIP and exits 0
(``--require-device`` makes that an error).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# DPM-Solver++ and UniPC on a flow-matching model (what diffusers' docs swap in for SD3 and Flux).
FLOW_SOLVER = {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}

# The schedulers each family's users run, as (class name, config overrides); None is the model's
# own scheduler. Euler a only where the pipeline hands its generator to scheduler.step (SD,
# SDXL): SD3, Flux and Wan call step() without one, so an ancestral step there would draw from
# torch's global generator, not from the seeds.
SCHEDULERS: dict[str, tuple[tuple[str | None, dict[str, Any]], ...]] = {
    "sd": (
        ("EulerDiscreteScheduler", {}),
        ("EulerAncestralDiscreteScheduler", {}),
        ("DPMSolverMultistepScheduler", {}),
        ("DDIMScheduler", {}),
    ),
    "sdxl": (
        (None, {}),  # EulerDiscreteScheduler, SDXL-base's leading spacing
        ("EulerAncestralDiscreteScheduler", {}),
        ("DPMSolverMultistepScheduler", {}),
        ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    ),
    "sd3": (
        (None, {}),  # FlowMatchEulerDiscreteScheduler, shift 3
        ("FlowMatchEulerDiscreteScheduler", {"use_dynamic_shifting": True}),  # mu from the size
        ("FlowMatchHeunDiscreteScheduler", {}),
        ("DPMSolverMultistepScheduler", {**FLOW_SOLVER, "flow_shift": 3.0}),
    ),
    "flux": (
        (None, {}),  # FlowMatchEulerDiscreteScheduler with the pipeline's sigmas and mu
        ("FlowMatchEulerDiscreteScheduler", {"use_karras_sigmas": True}),
        ("DPMSolverMultistepScheduler", FLOW_SOLVER),  # no pipeline sigmas; flow_shift = exp(mu)
        ("UniPCMultistepScheduler", FLOW_SOLVER),
    ),
    "wan": (
        (None, {}),  # UniPCMultistepScheduler, flow sigmas, flow_shift 3
        ("FlowMatchEulerDiscreteScheduler", {"shift": 3.0}),
        ("DPMSolverMultistepScheduler", {}),  # the model's config already has the flow keys
    ),
}
SEED_SETS = ((1234,), (1, 2, 3))
# A non-square size: rows and columns mixed up would show. 48 is a multiple of Flux's 16 (8x VAE,
# 2x2 packing) and of Wan's 16 (8x VAE, 2x2 patches).
HEIGHT, WIDTH = 32, 48
VIDEO_FRAMES = 9  # three latent frames with Wan's 4x temporal VAE


def scheduler_name(pipe: Any, scheduler: str | None) -> str:
    """The class that runs: ``scheduler``, or the pipeline's own when None."""
    return scheduler or type(pipe.scheduler).__name__


def diffusers_reference(
    pipe: Any,
    scheduler: str | None,
    overrides: Mapping[str, Any],
    seeds: Sequence[int],
    *,
    steps: int,
    prompt: str,
    height: int,
    width: int,
    num_frames: int | None = None,
    output_type: str = "np",
    **call_kwargs: Any,
) -> Any:
    """What diffusers alone makes: the scheduler ``from_config`` of the model's scheduler config
    with ``overrides``, one CPU generator per seed, the pipeline's own latents and schedule.

    Returns the images, or the videos for video pipelines. The pipeline's scheduler is put back.
    """
    import diffusers
    import torch

    original = pipe.scheduler
    cls = getattr(diffusers, scheduler_name(pipe, scheduler))
    pipe.scheduler = cls.from_config(original.config, **overrides)
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    if num_frames is not None:
        call_kwargs.update(num_frames=num_frames, num_videos_per_prompt=len(seeds))
    else:
        call_kwargs["num_images_per_prompt"] = len(seeds)
    try:
        with torch.inference_mode():
            output = pipe(
                prompt,
                num_inference_steps=steps,
                height=height,
                width=width,
                generator=generators[0] if len(generators) == 1 else generators,
                output_type=output_type,
                **call_kwargs,
            )
    finally:
        pipe.scheduler = original
    return output.frames if num_frames is not None else output.images


def run(device: str, dtype_name: str, steps: int, families: Sequence[str]) -> int:
    import numpy as np
    import torch

    from sigmaserve import Client
    from sigmaserve.server import ServerConfig, server_in_thread
    from sigmaserve.worker.engine import Worker, load_pipeline
    from sigmaserve.worker.tiny import write_tiny_pipeline

    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    dtype = getattr(torch, dtype_name)
    failures = 0
    with (
        server_in_thread(ServerConfig(port=0)) as server,
        Client(f"127.0.0.1:{server.port}") as client,
        tempfile.TemporaryDirectory() as models,
    ):
        for family in families:
            folder = write_tiny_pipeline(Path(models, family), family=family)
            pipe = load_pipeline(folder, device=device, dtype=dtype)
            worker = Worker(pipe, client, device=device)
            frames = VIDEO_FRAMES if worker.is_video else None
            for scheduler, overrides in SCHEDULERS[family]:
                for seeds in SEED_SETS:
                    started = time.perf_counter()
                    got = worker.generate(
                        "a tiny check",
                        seeds=list(seeds),
                        num_inference_steps=steps,
                        scheduler=scheduler,
                        scheduler_overrides=overrides,
                        width=WIDTH,
                        height=HEIGHT,
                        num_frames=frames,
                        output_type="np",
                    )
                    elapsed = time.perf_counter() - started
                    want = diffusers_reference(
                        pipe,
                        scheduler,
                        overrides,
                        seeds,
                        steps=steps,
                        prompt="a tiny check",
                        height=HEIGHT,
                        width=WIDTH,
                        num_frames=frames,
                    )
                    have = np.stack(got.videos if worker.is_video else got.images)
                    same = bool(np.array_equal(have, want))
                    finite = bool(np.isfinite(have).all())
                    diff = float(np.abs(have - want).max())
                    failures += not (same and finite)
                    name = scheduler_name(pipe, scheduler)
                    extra = "".join(f" {k}={v}" for k, v in overrides.items())
                    print(
                        f"{'OK  ' if same and finite else 'FAIL'} {device:6} {dtype_name:8} "
                        f"{family:4} {name}{extra} seeds={list(seeds)} bit-identical={same} "
                        f"finite={finite} max|diff|={diff:.3g} worker {elapsed:.2f}s"
                    )
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sigmaserve.worker.selfcheck")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default=None, help="float16 on CUDA, float32 on CPU")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument(
        "--family",
        action="append",
        choices=sorted(SCHEDULERS),
        help="pipeline family to check (repeat; default: all)",
    )
    parser.add_argument("--require-device", action="store_true")
    args = parser.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("SKIP: no CUDA device (torch.cuda.is_available() is False)")
        return 1 if args.require_device else 0
    dtypes = (
        [args.dtype]
        if args.dtype
        else (["float32", "float16"] if args.device.startswith("cuda") else ["float32"])
    )
    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    families = args.family or list(SCHEDULERS)
    status = 0
    for dtype_name in dtypes:
        status |= run(args.device, dtype_name, args.steps, families)
    print("hand-off check:", "PASS" if status == 0 else "FAIL")
    return status


if __name__ == "__main__":
    sys.exit(main())
