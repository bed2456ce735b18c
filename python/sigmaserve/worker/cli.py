"""``sigmaserve generate`` and ``sigmaserve worker``.

``register(commands)`` adds both to the main CLI's subparsers; ``python -m sigmaserve.worker``
runs the same two commands on their own.

* ``sigmaserve worker --model DIR --noise HOST:PORT [--host 0.0.0.0 --port 50052]`` serves
  sigmaserve.v1.WorkerService/Generate (plus health and reflection).
* ``sigmaserve generate --model DIR --noise HOST:PORT --prompt ... --seed 1 --seed 2 --out DIR``
  does one generation in-process; ``--worker HOST:PORT`` asks a running worker instead.
  Without ``--noise`` the schedule and latents are computed locally (same results).

Security, with the same meaning as ``sigmaserve serve``'s flags: ``--noise-token[-file]`` and
``--noise-tls[-ca|-cert|-key]`` for the connection to the noise service (both commands);
``worker --token[-file] --tls-cert --tls-key [--tls-client-ca]`` for the worker's own port;
``generate --worker ... --token[-file] --tls[-ca|-cert|-key]`` for the connection to a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sigmaserve.commands.options import (
    CommandError,
    OneLineParser,
    add_override_argument,
    bearer_token,
    channel_tls,
    parse_seed_range,
)
from sigmaserve.worker.engine import MAX_BATCH, MAX_IMAGES

ENV_PREFIX = "SIGMASERVE_WORKER_"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name.upper(), default)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=_env("model"),
        help="local diffusers model folder (SD1.5, SDXL, SD3, Flux or Wan 2.1); "
        "env SIGMASERVE_WORKER_MODEL",
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
    noise = parser.add_argument_group("connection to the noise service (--noise)")
    noise.add_argument(
        "--noise-token",
        default=_env("noise_token"),
        help="bearer token the noise service requires (shows in the process list: prefer "
        "--noise-token-file); env SIGMASERVE_WORKER_NOISE_TOKEN",
    )
    noise.add_argument(
        "--noise-token-file",
        default=_env("noise_token_file"),
        help="read that token from this file (a compose or Kubernetes secret); "
        "env SIGMASERVE_WORKER_NOISE_TOKEN_FILE",
    )
    _add_channel_tls(noise, "noise-", "the noise service")


def _add_channel_tls(group: Any, prefix: str, peer: str) -> None:
    """Client-side TLS flags: --{prefix}tls, --{prefix}tls-ca, --{prefix}tls-cert/-key."""
    env = prefix.replace("-", "_")
    group.add_argument(
        f"--{prefix}tls",
        action="store_true",
        default=_env(f"{env}tls", "") in ("1", "true", "yes"),
        help=f"dial {peer} over TLS, trusting the system CAs (implied by the options below)",
    )
    group.add_argument(
        f"--{prefix}tls-ca",
        default=_env(f"{env}tls_ca"),
        help=f"PEM CA bundle that signed {peer}'s certificate",
    )
    group.add_argument(
        f"--{prefix}tls-cert",
        default=_env(f"{env}tls_cert"),
        help=f"PEM client certificate for {peer} (mutual TLS; needs --{prefix}tls-key)",
    )
    group.add_argument(
        f"--{prefix}tls-key", default=_env(f"{env}tls_key"), help="PEM key of that certificate"
    )


def _add_own_port_security(parser: argparse.ArgumentParser) -> None:
    """The worker's own port: the same flags as ``sigmaserve serve``."""
    group = parser.add_argument_group("the worker's own port")
    group.add_argument(
        "--token",
        default=_env("token"),
        help="require 'authorization: Bearer TOKEN' on WorkerService (health stays open for "
        "probes; shows in the process list: prefer --token-file); env SIGMASERVE_WORKER_TOKEN",
    )
    group.add_argument(
        "--token-file",
        default=_env("token_file"),
        help="read that token from this file; env SIGMASERVE_WORKER_TOKEN_FILE",
    )
    group.add_argument("--tls-cert", default=_env("tls_cert"), help="PEM certificate chain: TLS")
    group.add_argument("--tls-key", default=_env("tls_key"), help="PEM private key of --tls-cert")
    group.add_argument(
        "--tls-client-ca",
        default=_env("tls_client_ca"),
        help="PEM CA bundle: require client certificates it signed (mutual TLS)",
    )


def register(commands: Any) -> None:
    """Add ``generate``, ``worker`` and ``load-model`` to an argparse subparsers object."""
    from sigmaserve.worker import loader

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
    worker.add_argument(
        "--grace-seconds",
        type=float,
        default=float(_env("grace_seconds", "25") or 25),
        help="on SIGTERM, how long in-flight generations may take to finish (25; keep it below "
        "the orchestrator's stop timeout: compose stop_grace_period, Kubernetes "
        "terminationGracePeriodSeconds)",
    )
    _add_own_port_security(worker)
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
        "--seed",
        dest="seeds",
        type=parse_seed_range,
        action="append",
        metavar="SEEDS",
        help="seeds: '7', '0-3', '1,5,9' (repeatable; any number: sent in requests of "
        f"{MAX_IMAGES}, run {MAX_BATCH} images at a time; default 0)",
    )
    generate.add_argument(
        "--source",
        default="cpu",
        help="noise generator: torch's CPU generator (diffusers' default), CUDA's Philox, or "
        "AUTOMATIC1111's NV source",
    )
    generate.add_argument(
        "--seed-mode",
        default="per_item",
        help="per_item: one image and generator per seed; batch: one seed, one generator for "
        "--batch-size images (diffusers' single generator); a1111: one seed, image i from seed + i",
    )
    generate.add_argument(
        "--batch-size", type=int, help="images of one seed with --seed-mode batch or a1111 (1)"
    )
    generate.add_argument("--steps", type=int, help="num_inference_steps (default 30)")
    generate.add_argument(
        "--scheduler",
        help="diffusers scheduler class or '<tool>:<name>' (its sigmas and initial scale, run "
        "on Euler); default: the model's",
    )
    generate.add_argument("--guidance", type=float, help="guidance scale (pipeline default)")
    generate.add_argument("--width", type=int, help="image width in pixels (default: the model's)")
    generate.add_argument(
        "--height", type=int, help="image height in pixels (default: the model's)"
    )
    generate.add_argument(
        "--num-frames",
        type=int,
        help="video pipelines: frames per video (default: the pipeline's); each frame is "
        "written as a PNG",
    )
    add_override_argument(generate)
    generate.add_argument("--out", default=".", help="folder for the PNG files")
    generate.add_argument("--json", action="store_true", help="print the run's metadata as JSON")
    remote = generate.add_argument_group("connection to a worker (--worker)")
    remote.add_argument(
        "--token",
        default=_env("token"),
        help="bearer token the worker requires (prefer --token-file); env SIGMASERVE_WORKER_TOKEN",
    )
    remote.add_argument(
        "--token-file",
        default=_env("token_file"),
        help="read that token from this file; env SIGMASERVE_WORKER_TOKEN_FILE",
    )
    _add_channel_tls(remote, "", "the worker")
    generate.set_defaults(func=_generate)
    loader.register(commands)


def _channel_tls(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """``Client``/``WorkerClient`` TLS keyword arguments from the --{prefix}tls* flags."""
    key = prefix.replace("-", "_")
    ca, cert, private_key = (getattr(args, f"{key}tls_{n}") for n in ("ca", "cert", "key"))
    return channel_tls(getattr(args, f"{key}tls"), ca, cert, private_key, f"--{prefix}")


def _noise_source(args: argparse.Namespace) -> Any:
    if args.noise:
        from sigmaserve import Client

        token = bearer_token(args.noise_token, args.noise_token_file, "--noise-token")
        return Client(args.noise, timeout=120, token=token or None, **_channel_tls(args, "noise-"))
    import sigmaserve

    return sigmaserve


def _own_port_security(args: argparse.Namespace) -> tuple[str, Any]:
    """(token, server credentials or None) for the worker's own port, checked before loading."""
    from sigmaserve.server.auth import server_credentials
    from sigmaserve.server.config import ServerConfig, StartupError

    token = bearer_token(args.token, args.token_file, "--token")
    tls = ServerConfig(
        tls_cert=args.tls_cert or "",
        tls_key=args.tls_key or "",
        tls_client_ca=args.tls_client_ca or "",
    )
    try:
        return token, server_credentials(tls)
    except (OSError, ValueError, StartupError) as exc:
        raise CommandError(f"worker TLS: {exc}") from None


def _build_worker(args: argparse.Namespace) -> Any:
    from sigmaserve.worker.engine import Worker, quiet_dependencies

    if not args.model:
        raise CommandError("--model (or SIGMASERVE_WORKER_MODEL) is required")
    quiet_dependencies()
    return Worker.from_model(args.model, _noise_source(args), device=args.device, dtype=args.dtype)


def _worker(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.tiny_if_missing and args.model and not Path(args.model, "model_index.json").is_file():
        from sigmaserve.worker.tiny import write_tiny_pipeline

        write_tiny_pipeline(args.model)
    from sigmaserve.worker.service import serve_worker

    token, credentials = _own_port_security(args)
    worker = _build_worker(args)
    try:
        asyncio.run(
            serve_worker(
                worker,
                args.host,
                args.port,
                token=token,
                credentials=credentials,
                grace=args.grace_seconds,
            )
        )
    except OSError as exc:
        print(f"sigmaserve worker: {exc}", file=sys.stderr)
        return 2
    return 0


def _generate(args: argparse.Namespace) -> int:
    logging.basicConfig(level=str(args.log_level).upper())
    seeds = [seed for group in args.seeds or [[0]] for seed in group]
    kwargs: dict[str, Any] = {
        "negative_prompt": args.negative_prompt,
        "num_inference_steps": args.steps,
        "scheduler": args.scheduler,
        "guidance_scale": args.guidance,
        "width": args.width,
        "height": args.height,
        "scheduler_overrides": dict(args.overrides),
        "source": args.source,
        "seed_mode": args.seed_mode,
        "batch_size": args.batch_size,
        "num_frames": args.num_frames,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Per-item seeds go in requests of at most MAX_IMAGES; the other modes take one seed.
    requests = (
        [seeds[i : i + MAX_IMAGES] for i in range(0, len(seeds), MAX_IMAGES)]
        if args.seed_mode == "per_item"
        else [seeds]
    )
    files: list[str] = []
    made: list[int] = []  # the seed of each image or video
    meta: dict[str, Any] = {}
    warned: set[str] = set()
    with _generator(args) as generate:
        for batch in requests:
            pngs, meta = generate(args.prompt, seeds=batch, **kwargs)
            for warning in meta.get("warnings", []):
                if warning not in warned:  # as `sigmaserve schedule` shows them, once
                    warned.add(warning)
                    print(f"warning: {warning}", file=sys.stderr)
            for seed, png in pngs:
                stem = f"{len(made):02d}-seed{seed}"
                made.append(seed)
                # A video is a list of PNG frames.
                named = (
                    [(f"{stem}.png", png)]
                    if isinstance(png, bytes)
                    else [(f"{stem}-frame{n:03d}.png", frame) for n, frame in enumerate(png)]
                )
                for name, data in named:
                    (out / name).write_bytes(data)
                    files.append(str(out / name))
    meta["seeds"] = made
    meta["files"] = files
    if args.json:
        print(json.dumps(meta))
    else:
        for name in files:
            print(name)
    return 0


# (seed, PNG) per image, or (seed, [PNG per frame]) per video, and the run's metadata.
Made = list[tuple[int, bytes | list[bytes]]]
GenerateCall = Callable[..., tuple[Made, dict[str, Any]]]


@contextlib.contextmanager
def _generator(args: argparse.Namespace) -> Iterator[GenerateCall]:
    """``generate(prompt, seeds=..., **kwargs) -> ([(seed, png or frames)], metadata)`` on a
    running worker (``--worker``) or on a pipeline loaded here."""
    if args.worker:
        from sigmaserve.worker.service import WorkerClient

        token = bearer_token(args.token, args.token_file, "--token")
        with WorkerClient(args.worker, token=token or None, **_channel_tls(args, "")) as client:

            def remote(prompt: str, **kwargs: Any) -> tuple[Made, dict]:
                reply = client.generate(prompt, **kwargs)
                meta = {
                    "scheduler": reply.scheduler,
                    "num_inference_steps": reply.num_inference_steps,
                    "init_noise_sigma": reply.init_noise_sigma,
                    "device": reply.device,
                    "dtype": reply.dtype,
                    "pipeline": reply.pipeline,
                    "num_frames": reply.num_frames or None,
                    "warnings": list(reply.warnings),
                }
                made: Made = [(_signed(video.seed), list(video.frames)) for video in reply.videos]
                made += [(_signed(image.seed), image.png) for image in reply.images]
                return made, meta

            yield remote
        return
    worker = _build_worker(args)

    def local(prompt: str, **kwargs: Any) -> tuple[Made, dict]:
        generation = worker.generate(prompt, **kwargs)
        meta = {
            "scheduler": generation.scheduler,
            "num_inference_steps": generation.num_inference_steps,
            "init_noise_sigma": generation.init_noise_sigma,
            "sigmas": None if generation.sigmas is None else generation.sigmas.tolist(),
            "device": generation.device,
            "dtype": generation.dtype,
            "pipeline": generation.pipeline,
            "num_frames": generation.num_frames,
            "seconds": round(generation.seconds, 3),
            "warnings": list(generation.warnings),
        }
        made: Made = []
        if generation.videos:  # a video pipeline makes no images
            made += zip(generation.seeds, generation.video_png_bytes(), strict=True)
        else:
            made += zip(generation.seeds, generation.png_bytes(), strict=True)
        return made, meta

    yield local


def _signed(seed: int) -> int:
    """A uint64 seed from the wire as the caller wrote it (negative seeds wrap on the wire)."""
    return seed - (1 << 64) if seed >= 1 << 63 else seed


def main(argv: list[str] | None = None) -> int:
    from sigmaserve.cli import run_command

    parser = OneLineParser(prog="python -m sigmaserve.worker")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(commands)
    return run_command(parser, argv)
