"""``sigmaserve sample``: bulk seeded latents to safetensors or .npy shards, resumable."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sigmaserve.commands.options import (
    CommandError,
    add_override_argument,
    add_target_arguments,
    noise_source,
    parse_seed_range,
)

FORMATS = (".safetensors", ".npy")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "sample",
        help="write seeded initial latents for many seeds to safetensors/.npy shards",
        description="Draw one latent per seed (diffusers' per-item generators) in the preset "
        "pipeline's layout, (1, C, H, W) or its video or packed shape, and write them in "
        "shards. Re-running the same command resumes: finished shards are kept.",
    )
    parser.add_argument(
        "--seeds", required=True, type=parse_seed_range, help="seeds: '0-9999', '1,5,9' or '0-3,10'"
    )
    parser.add_argument(
        "--width", type=int, help="image width in pixels (default: the preset pipeline's)"
    )
    parser.add_argument(
        "--height", type=int, help="image height in pixels (default: the preset pipeline's)"
    )
    parser.add_argument(
        "--num-frames",
        type=int,
        help="video frames for a video preset (default: the preset pipeline's)",
    )
    parser.add_argument(
        "--preset",
        default="sd15",
        help="model family: latent channels, layout and default size (sd15)",
    )
    parser.add_argument(
        "--source",
        default="cpu",
        help="noise generator: cpu, cuda or a1111_nv (any spelling the library takes)",
    )
    parser.add_argument(
        "--dtype",
        default="float32",
        help="latent dtype: float32, float16, bfloat16 (stored as its uint16 bit patterns) or "
        "float64",
    )
    parser.add_argument("--scheduler", help="scale by this scheduler's init_noise_sigma")
    parser.add_argument("--steps", type=int, default=50, help="num_inference_steps for --scheduler")
    add_override_argument(parser)
    parser.add_argument(
        "--shard-size", type=int, default=1000, help="seeds per shard file (default 1000)"
    )
    parser.add_argument(
        "--out", required=True, help="output file, .safetensors or .npy (shards get -NNNNN)"
    )
    parser.add_argument(
        "--part",
        type=parse_part,
        metavar="I/N",
        help="write only part I of N (0-based): a contiguous range of the shards, so N processes "
        "(e.g. a Kubernetes Indexed Job, I = its completion index) share one --out folder",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def parse_part(text: str) -> tuple[int, int]:
    """``I/N`` with 0 <= I < N."""
    head, sep, tail = text.partition("/")
    try:
        index, count = int(head), int(tail)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N, got {text!r}") from None
    if not sep or count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return index, count


@dataclass(frozen=True)
class SampleJob:
    """Everything that determines the bytes written; stored in the manifest for resuming."""

    seeds: list[int]
    width: int
    height: int
    num_frames: int | None
    preset: str
    source: str
    dtype: str
    scheduler: str | None
    steps: int
    overrides: dict[str, Any]
    shard_size: int


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in FORMATS:
        print(f"sigmaserve sample: --out must end in {' or '.join(FORMATS)}", file=sys.stderr)
        return 2
    if args.shard_size < 1:
        print("sigmaserve sample: --shard-size must be positive", file=sys.stderr)
        return 2
    job = sample_job(args)
    with noise_source(args) as source:
        written, skipped = write_shards(
            job, out, progress=not args.no_progress, part=args.part, source=source
        )
    print(f"{written} shard(s) written, {skipped} already complete, manifest {manifest_path(out)}")
    return 0


def sample_job(args: argparse.Namespace) -> SampleJob:
    """The job of a command line: names in their canonical spelling (the library's resolver,
    so a resumed run with another spelling is the same job), the size the preset's pipeline
    defaults to where none is given."""
    from sigmaserve.catalog import resolve_name
    from sigmaserve.schedules import list_presets

    preset = resolve_name("preset", args.preset)
    defaults = list_presets()[preset]

    def given_or_default(key: str) -> Any:
        value = getattr(args, key)
        return defaults[key] if value is None else value  # 0 stays 0: the library refuses it

    return SampleJob(
        seeds=args.seeds,
        width=given_or_default("width"),
        height=given_or_default("height"),
        num_frames=given_or_default("num_frames"),
        preset=preset,
        source=resolve_name("source", args.source),
        dtype=resolve_name("dtype", args.dtype),
        scheduler=args.scheduler,
        steps=args.steps,
        overrides=dict(args.overrides),
        shard_size=args.shard_size,
    )


def manifest_path(out: Path) -> Path:
    return out.with_name(out.stem + ".manifest.json")


def shard_path(out: Path, index: int, count: int) -> Path:
    if count == 1:
        return out
    return out.with_name(f"{out.stem}-{index:05d}-of-{count:05d}{out.suffix}")


def part_range(shards: int, part: tuple[int, int] | None) -> range:
    """The shard indices part ``(i, n)`` writes: n near-equal contiguous ranges cover them all."""
    if part is None:
        return range(shards)
    index, count = part
    return range(index * shards // count, (index + 1) * shards // count)


def write_shards(
    job: SampleJob,
    out: Path,
    *,
    progress: bool = False,
    part: tuple[int, int] | None = None,
    source: Any = None,
) -> tuple[int, int]:
    """Write every missing shard (of ``part`` only, when given); returns (written, already there).

    The manifest describes the whole job whatever the part, so every part checks and may write
    the same manifest, and a resumed run of any part refuses other arguments. ``source``
    computes the latents: a ``sigmaserve.Client`` or, by default, the ``sigmaserve`` module
    (the same bytes)."""
    if source is None:
        import sigmaserve as source
    chunks = [job.seeds[i : i + job.shard_size] for i in range(0, len(job.seeds), job.shard_size)]
    # One seed first: arguments the library refuses fail before a manifest or shard is written.
    _latents_for(source, job, job.seeds[:1])
    _check_manifest(job, out, len(chunks))
    mine = part_range(len(chunks), part)
    written = skipped = 0
    for index in _progress(list(mine), progress):
        seeds = chunks[index]
        path = shard_path(out, index, len(chunks))
        if path.exists():
            skipped += 1
            continue
        latents = _latents_for(source, job, seeds)
        _write_atomically(path, latents, np.asarray(seeds, dtype=np.int64), job)
        written += 1
    return written, skipped


def _check_manifest(job: SampleJob, out: Path, shards: int) -> None:
    path = manifest_path(out)
    record = {
        "job": asdict(job),
        "shards": [shard_path(out, i, shards).name for i in range(shards)],
    }
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != record:
            raise CommandError(
                f"--out: {path} was written for other arguments; "
                "use another --out or delete it and its shards"
            )
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    # Several parts may start at once: write beside it and rename, so none reads half a file.
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.partial")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def _latents_for(source: Any, job: SampleJob, seeds: list[int]) -> np.ndarray:
    latents = source.sample_init_latents(
        width=job.width,
        height=job.height,
        num_frames=job.num_frames,
        batch_size=len(seeds),
        preset=job.preset,
        seeds=seeds,
        source=job.source,
        dtype=job.dtype,
        scheduler=job.scheduler,
        num_inference_steps=job.steps if job.scheduler else None,
        **job.overrides,
    )
    return latents.array


def _write_atomically(path: Path, latents: np.ndarray, seeds: np.ndarray, job: SampleJob) -> None:
    # Write beside the target and rename, so an interrupted run never leaves a shard that
    # looks complete: resuming skips exactly the shards that exist.
    tmp = path.with_name(path.name + ".partial")
    if path.suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file(
            {"latents": np.ascontiguousarray(latents), "seeds": seeds},
            str(tmp),
            metadata={"dtype": job.dtype, "source": job.source, "preset": job.preset},
        )
    else:
        with open(tmp, "wb") as handle:
            np.save(handle, latents)
        np.save(path.with_name(path.stem + ".seeds.npy"), seeds)
    os.replace(tmp, path)


def _progress(items: list[int], enabled: bool) -> Any:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, unit="shard", desc="sampling")
