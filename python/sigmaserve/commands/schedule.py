"""``sigmaserve schedule``: print, plot and compare schedules."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from typing import Any

import numpy as np

from sigmaserve.commands.options import add_override_argument, add_target_arguments, noise_source


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "schedule",
        help="print a scheduler's timesteps and sigmas (table, JSON, CSV), plot or compare them",
        description="Compute the schedule a diffusers scheduler (or '<tool>:<name>', e.g. "
        "comfyui:karras) gives for a number of steps, exactly as the library does: what the "
        "preset's pipeline sets on it at this size (--bare: the scheduler alone).",
    )
    parser.add_argument(
        "scheduler",
        nargs="?",
        help="diffusers class name, a tool's sampler name ('DPM++ 2M Karras') or "
        "'<tool>:<name>' (default: the preset pipeline's own scheduler)",
    )
    parser.add_argument("--steps", type=int, default=50, help="num_inference_steps (default 50)")
    parser.add_argument(
        "--preset",
        default="sd15",
        help="model family supplying the training config (default sd15; 'none' = class defaults)",
    )
    parser.add_argument(
        "--width", type=int, help="image width the pipeline runs at (default: the preset's)"
    )
    parser.add_argument(
        "--height", type=int, help="image height the pipeline runs at (default: the preset's)"
    )
    parser.add_argument(
        "--num-frames", type=int, help="video frames (video presets; default: the preset's)"
    )
    parser.add_argument(
        "--bare",
        action="store_true",
        help="the bare Scheduler.from_config(config).set_timesteps(steps), without what the "
        "preset's pipeline passes (Flux's sigmas and mu, SD3's and the video models' shifts)",
    )
    add_override_argument(parser)
    parser.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format"
    )
    parser.add_argument(
        "--plot",
        metavar="PNG",
        help="draw the sigmas against the step index (log scale) and the timesteps, with each "
        "init_noise_sigma marked",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="SCHEDULER",
        default=[],
        help="also compute these schedulers (same steps and preset), print their summary and "
        "draw them in the plot",
    )
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def preset_arg(value: str) -> str | None:
    return None if value.lower() == "none" else value


def run(args: argparse.Namespace) -> int:
    overrides = dict(args.overrides)
    preset = preset_arg(args.preset)
    # The pipeline's size and conventions (a preset's pipeline, unless --bare); sizes left
    # unset (None) are the preset's defaults, locally and over the wire.
    call = {
        "preset": preset,
        "pipeline": not args.bare,
        "width": args.width,
        "height": args.height,
        "num_frames": args.num_frames,
    }
    with noise_source(args) as source:
        schedule = source.get_schedule(args.scheduler, args.steps, **call, **overrides)
        others = [source.get_schedule(name, args.steps, **call) for name in args.compare]
    sys.stdout.write(render(schedule, args.format))
    if args.format == "csv":  # the table shows them, JSON carries them; CSV has no room
        for warning in schedule.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    for other in others:
        sys.stdout.write(summary_line(other))
    if args.plot:
        from sigmaserve.plots import plot_schedules

        plot_schedules([schedule, *others], args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def rows(schedule: Any) -> list[tuple[int, Any, Any]]:
    timesteps = np.asarray(schedule.timesteps)
    sigmas = None if schedule.sigmas is None else np.asarray(schedule.sigmas)
    count = max(len(timesteps), 0 if sigmas is None else len(sigmas))
    out = []
    for i in range(count):
        t = timesteps[i].item() if i < len(timesteps) else ""
        s = sigmas[i].item() if sigmas is not None and i < len(sigmas) else ""
        out.append((i, t, s))
    return out


def render(schedule: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(schedule.to_dict(), indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["index", "timestep", "sigma"])
        writer.writerows(rows(schedule))
        return buffer.getvalue()
    lines = [summary_line(schedule).rstrip("\n"), f"{'index':>5}  {'timestep':>14}  {'sigma':>14}"]
    lines += [f"{i:>5}  {_cell(t):>14}  {_cell(s):>14}" for i, t, s in rows(schedule)]
    lines += [f"warning: {w}" for w in schedule.warnings]
    return "\n".join(lines) + "\n"


def summary_line(schedule: Any) -> str:
    sigmas = schedule.sigmas
    span = (
        "" if sigmas is None else f", sigma {float(np.max(sigmas)):.6g} -> {float(sigmas[-1]):.6g}"
    )
    return (
        f"{schedule.scheduler}: {len(schedule.timesteps)} timesteps{span}, "
        f"init_noise_sigma {schedule.init_noise_sigma:.6g}\n"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)
