"""Parsing helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
from typing import Any


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``: VALUE as JSON when it parses (numbers, true/false, lists), else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def add_override_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-s",
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        type=parse_override,
        action="append",
        default=[],
        help="a diffusers config key or set_timesteps extra, e.g. --set use_karras_sigmas=true "
        "--set timestep_spacing=trailing --set 'sigmas=[14.6, 7, 1, 0]' (repeatable)",
    )


def parse_seed_range(text: str) -> list[int]:
    """``0-9999``, ``1,5,9`` or a mix (``0-3,10``) as a list of seeds, in order."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        head, sep, tail = part.partition("-")
        try:
            if sep and head:
                first, last = int(head), int(tail)
                if last < first:
                    raise argparse.ArgumentTypeError(f"empty seed range {part!r}")
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad seed list {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds
