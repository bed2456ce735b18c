"""End-to-end hand-off check on one device: ``python -m sigmaserve.worker.selfcheck --device cuda``.

Builds the tiny random SD pipeline, starts a NoiseService in-process, and for several schedulers
and seed batches compares the worker's images (service schedule + latents + generator states)
with diffusers run directly with ``torch.Generator("cpu").manual_seed(seed)``, on the same device
and dtype. Prints one line per case and exits non-zero on any mismatch; ``--device cuda`` without a
GPU prints SKIP and exits 0 (``--require-device`` makes that an error).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

SCHEDULERS = (
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "DDIMScheduler",
)
SEED_SETS = ((1234,), (1, 2, 3))


def direct_images(pipe: Any, scheduler: str, seeds: Sequence[int], steps: int, **kw: Any) -> Any:
    """What diffusers alone makes: the scheduler from the model config, CPU generators."""
    import diffusers
    import torch

    pipe.scheduler = getattr(diffusers, scheduler).from_config(pipe.scheduler.config)
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    with torch.inference_mode():
        return pipe(
            num_inference_steps=steps,
            generator=generators[0] if len(generators) == 1 else generators,
            num_images_per_prompt=len(seeds),
            output_type="np",
            **kw,
        ).images


def run(device: str, dtype_name: str, steps: int) -> int:
    import numpy as np
    import torch

    from sigmaserve import Client
    from sigmaserve.server import ServerConfig, server_in_thread
    from sigmaserve.worker.engine import Worker
    from sigmaserve.worker.tiny import IMAGE_SIZE, build_tiny_pipeline

    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    dtype = getattr(torch, dtype_name)
    base = build_tiny_pipeline()
    base.to(device=device, dtype=dtype)
    scheduler_config = dict(base.scheduler.config)
    failures = 0
    with (
        server_in_thread(ServerConfig(port=0)) as server,
        Client(f"127.0.0.1:{server.port}") as client,
    ):
        worker = Worker(base, client, device=device)
        for name in SCHEDULERS:
            for seeds in SEED_SETS:
                kw: dict[str, Any] = {
                    "prompt": "a tiny check",
                    "height": IMAGE_SIZE,
                    "width": IMAGE_SIZE,
                }
                started = time.perf_counter()
                got = worker.generate(
                    kw["prompt"],
                    seeds=list(seeds),
                    num_inference_steps=steps,
                    scheduler=name,
                    width=IMAGE_SIZE,
                    height=IMAGE_SIZE,
                    output_type="np",
                )
                elapsed = time.perf_counter() - started
                base.scheduler = type(base.scheduler).from_config(scheduler_config)
                want = direct_images(base, name, seeds, steps, **kw)
                same = bool(np.array_equal(np.stack(got.images), want))
                diff = float(np.abs(np.stack(got.images) - want).max())
                failures += not same
                print(
                    f"{'OK  ' if same else 'FAIL'} {device:6} {dtype_name:8} {name:34} "
                    f"seeds={list(seeds)!s:12} bit-identical={same} max|diff|={diff:.3g} "
                    f"worker {elapsed:.2f}s"
                )
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sigmaserve.worker.selfcheck")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default=None, help="float16 on CUDA, float32 on CPU")
    parser.add_argument("--steps", type=int, default=4)
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
    status = 0
    for dtype_name in dtypes:
        status |= run(args.device, dtype_name, args.steps)
    print("hand-off check:", "PASS" if status == 0 else "FAIL")
    return status


if __name__ == "__main__":
    sys.exit(main())
