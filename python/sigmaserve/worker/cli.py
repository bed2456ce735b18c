"""``sigmaserve generate`` and ``sigmaserve worker``.

``register(commands)`` adds both to the main CLI's subparsers; ``python -m sigmaserve.worker``
runs the same two commands on their own.

* ``sigmaserve worker --model DIR --noise HOST:PORT [--host 0.0.0.0 --port 50052]`` serves
  sigmaserve.v1.WorkerService/Generate (plus health and reflection).
* ``sigmaserve generate --model DIR --noise HOST:PORT --prompt ... --seed 1 --seed 2 --out DIR``
  does one generation in-process; ``--worker HOST:PORT`` asks a running worker instead.
  Without ``--noise`` the schedule and latents are computed locally (same results).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

ENV_PREFIX = "SIGMASERVE_WORKER_"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name.upper(), default)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=_env("model"),
        help="local diffusers model folder (SD1.5, SDXL, SD3 or Flux); env SIGMASERVE_WORKER_MODEL",
    )
    parser.add_argument(
        "--noise",
        default=_env("noise"),
        help="noise service target, e.g. 'noise:50051' or 'dns:///noise-headless:50051' "
        "(round_robin over all replicas); unset: compute locally. env SIGMASERVE_WORKER_NOISE",
    )
    parser.add_argument(
        "--device",
        default=_env("device", "auto"),
        help="'auto' (CUDA when present, else CPU), 'cuda', 'cuda:1', 'cpu'",
    )
    parser.add_argument(
        "--dtype",
        default=_env("dtype", "auto"),
        choices=("auto", "float32", "float16", "bfloat16"),
        help="pipeline dtype (auto: float16 on CUDA, float32 on CPU)",
    )
    parser.add_argument(
        "--log-level", default=_env("log_level", "INFO"), help="DEBUG, INFO, WARNING or ERROR"
    )


def register(commands: Any) -> None:
    """Add ``generate`` and ``worker`` to an argparse subparsers object."""
    worker = commands.add_parser(
        "worker",
        help="serve WorkerService: images from a diffusers pipeline fed by the noise service",
        description="Load a diffusers pipeline and serve sigmaserve.v1.WorkerService/Generate, "
        "with grpc.health.v1 (service '' and 'sigmaserve.v1.WorkerService') and reflection.",
    )
    _add_common(worker)
    worker.add_argument("--host", default=_env("host", "127.0.0.1"), help="bind address")
    worker.add_argument(
        "--port", type=int, default=int(_env("port", "50052") or 50052), help="bind port (50052)"
    )
    worker.add_argument(
        "--tiny-if-missing",
        action="store_true",
        help="write the tiny random test pipeline to --model first if the folder is empty "
        "(CPU smoke tests)",
    )
    worker.set_defaults(func=_worker)

    generate = commands.add_parser(
        "generate",
        help="make images with a diffusers pipeline from the noise service's schedule and latents",
        description="One generation: the schedule and per-seed latents come from the noise "
        "service (or are computed locally), the pipeline runs on CUDA when present.",
    )
    _add_common(generate)
    generate.add_argument(
        "--worker", help="ask a running worker (host:port) instead of loading the model here"
    )
    generate.add_argument("--prompt", required=True, help="what to draw")
    generate.add_argument("--negative-prompt", help="what to steer away from")
    generate.add_argument(
        "--seed", dest="seeds", type=int, action="append", help="seed (repeat for a batch)"
    )
    generate.add_argument("--steps", type=int, help="num_inference_steps (default 30)")
    generate.add_argument("--scheduler", help="diffusers scheduler class (default: the model's)")
    generate.add_argument("--guidance", type=float, help="guidance scale (pipeline default)")
    generate.add_argument("--width", type=int, help="image width in pixels (default: the model's)")
    generate.add_argument(
        "--height", type=int, help="image height in pixels (default: the model's)"
    )
    generate.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="scheduler config override, e.g. --set use_karras_sigmas=true",
    )
    generate.add_argument("--out", default=".", help="folder for the PNG files")
    generate.add_argument("--json", action="store_true", help="print the run's metadata as JSON")
    generate.set_defaults(func=_generate)


def _overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _noise_source(target: str | None) -> Any:
    if target:
        from sigmaserve import Client

        return Client(target, timeout=120)
    import sigmaserve

    return sigmaserve


def _build_worker(args: argparse.Namespace) -> Any:
    from sigmaserve.worker.engine import Worker

    if not args.model:
        raise SystemExit("--model (or SIGMASERVE_WORKER_MODEL) is required")
    return Worker.from_model(
        args.model, _noise_source(args.noise), device=args.device, dtype=args.dtype
    )


def _worker(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.tiny_if_missing and args.model and not Path(args.model, "model_index.json").is_file():
        from sigmaserve.worker.tiny import write_tiny_pipeline

        write_tiny_pipeline(args.model)
    from sigmaserve.worker.service import serve_worker

    worker = _build_worker(args)
    try:
        asyncio.run(serve_worker(worker, args.host, args.port))
    except OSError as exc:
        print(f"sigmaserve worker: {exc}", file=sys.stderr)
        return 2
    return 0


def _generate(args: argparse.Namespace) -> int:
    logging.basicConfig(level=str(args.log_level).upper())
    kwargs: dict[str, Any] = {
        "seeds": args.seeds or [0],
        "negative_prompt": args.negative_prompt,
        "num_inference_steps": args.steps,
        "scheduler": args.scheduler,
        "guidance_scale": args.guidance,
        "width": args.width,
        "height": args.height,
        "scheduler_overrides": _overrides(args.overrides),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        from sigmaserve.worker.service import WorkerClient

        with WorkerClient(args.worker) as client:
            reply = client.generate(args.prompt, **kwargs)
        pngs = [(image.seed, image.png) for image in reply.images]
        meta: dict[str, Any] = {
            "scheduler": reply.scheduler,
            "seeds": list(reply.seeds),
            "num_inference_steps": reply.num_inference_steps,
            "init_noise_sigma": reply.init_noise_sigma,
            "device": reply.device,
            "dtype": reply.dtype,
            "pipeline": reply.pipeline,
        }
    else:
        worker = _build_worker(args)
        generation = worker.generate(args.prompt, **kwargs)
        pngs = list(zip(generation.seeds, generation.png_bytes(), strict=True))
        meta = {
            "scheduler": generation.scheduler,
            "seeds": generation.seeds,
            "num_inference_steps": generation.num_inference_steps,
            "init_noise_sigma": generation.init_noise_sigma,
            "sigmas": None if generation.sigmas is None else generation.sigmas.tolist(),
            "device": generation.device,
            "dtype": generation.dtype,
            "pipeline": generation.pipeline,
            "seconds": round(generation.seconds, 3),
        }
    files = []
    for index, (seed, png) in enumerate(pngs):
        path = out / f"{index:02d}-seed{seed}.png"
        path.write_bytes(png)
        files.append(str(path))
    meta["files"] = files
    if args.json:
        print(json.dumps(meta))
    else:
        for name in files:
            print(name)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sigmaserve.worker")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(commands)
    args = parser.parse_args(argv)
    return int(args.func(args))
