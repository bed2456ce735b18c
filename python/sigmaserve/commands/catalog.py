"""``sigmaserve list``: the names the library accepts (schedulers, presets, ecosystem tools).

The catalog is read from the library (the core's tables); nothing here lists names itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

KINDS = ("schedulers", "presets", "tools")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "list",
        help="list the schedulers, presets and ecosystem tools (with filters)",
        description="List the names sigmaserve accepts: diffusers scheduler classes with their "
        "family, ecosystem schedules ('<tool>:<name>'), model presets, and the tools. Filters "
        "combine; --format json prints the same records as JSON.",
    )
    parser.add_argument(
        "kind",
        nargs="?",
        choices=(*KINDS, "all"),
        default="all",
        help="what to list (default: all)",
    )
    parser.add_argument(
        "--family",
        help="only this scheduler family (alpha, sigma, multistep, flow_match, edm, "
        "consistency); for presets, the family of their scheduler",
    )
    parser.add_argument(
        "--tool",
        help="only schedulers of this tool: diffusers, comfyui, a1111, kdiffusion, ays",
    )
    parser.add_argument("--match", metavar="TEXT", help="only names containing TEXT (any case)")
    parser.add_argument(
        "--excluded",
        action="store_true",
        help="also list the diffusers scheduler classes sigmaserve does not reproduce, and why",
    )
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format"
    )
    parser.set_defaults(func=run)


def catalog() -> dict[str, Any]:
    """Every name the library accepts, as records: ``schedulers`` (``name``, ``family``,
    ``tool``), ``presets`` (``name``, ``repo``, ``scheduler``, ``family``, latent layout),
    ``families`` and ``tools`` (descriptions and names), ``excluded`` (class and reason)."""
    from sigmaserve.ecosystem import TOOLS, list_ecosystem_schedules
    from sigmaserve.schedules import (
        excluded_schedulers,
        list_presets,
        scheduler_families,
        scheduler_family_descriptions,
    )

    families = scheduler_families()
    schedulers = [{"name": n, "family": f, "tool": "diffusers"} for n, f in families.items()]
    ecosystem = list_ecosystem_schedules()
    # Ecosystem schedules are sigma schedules walked by k-diffusion-style samplers.
    schedulers += [
        {"name": f"{tool}:{name}", "family": "sigma", "tool": tool}
        for tool in TOOLS
        for name in ecosystem[tool]
    ]
    presets = [
        {
            "name": name,
            "repo": p["repo"],
            "scheduler": p["class_name"],
            "family": families.get(p["class_name"], ""),
            "latent_channels": p["latent_channels"],
            "vae_scale_factor": p["vae_scale_factor"],
            "pack_factor": p["pack_factor"],
        }
        for name, p in list_presets().items()
    ]
    return {
        "schedulers": schedulers,
        "presets": presets,
        "families": scheduler_family_descriptions(),
        "tools": {"diffusers": list(families), **{t: list(ecosystem[t]) for t in TOOLS}},
        "excluded": [{"name": n, "reason": r} for n, r in excluded_schedulers().items()],
    }


def filtered(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The records ``args`` asks for; an unknown --family or --tool is an error naming the
    valid ones."""
    from sigmaserve.commands.options import CommandError

    def check(flag: str, value: str | None, valid: list[str]) -> None:
        if value is not None and value not in valid:
            raise CommandError(f"--{flag}: unknown {flag} {value!r}; expected one of {valid}")

    check("family", args.family, list(data["families"]))
    check("tool", args.tool, list(data["tools"]))
    text = (args.match or "").lower()

    def keep(record: dict[str, Any]) -> bool:
        return (
            (args.family is None or record.get("family") == args.family)
            and (args.tool is None or record.get("tool", args.tool) == args.tool)
            and text in record["name"].lower()
        )

    out: dict[str, Any] = {}
    if args.kind in ("schedulers", "all"):
        out["schedulers"] = [r for r in data["schedulers"] if keep(r)]
    if args.kind in ("presets", "all") and args.tool in (None, "diffusers"):
        out["presets"] = [r for r in data["presets"] if keep(r)]
    if args.kind in ("tools", "all"):
        out["tools"] = {
            tool: [n for n in names if text in f"{tool}:{n}".lower()]
            for tool, names in data["tools"].items()
            if args.tool in (None, tool)
        }
    if args.excluded:
        out["excluded"] = [r for r in data["excluded"] if text in r["name"].lower()]
    return out


def run(args: argparse.Namespace) -> int:
    data = catalog()
    selected = filtered(data, args)
    if args.format == "json":
        sys.stdout.write(json.dumps(selected, indent=1) + "\n")
    else:
        sys.stdout.write(render(selected, data["families"]))
    return 0


def render(selected: dict[str, Any], families: dict[str, str]) -> str:
    lines: list[str] = []
    schedulers = selected.get("schedulers")
    if schedulers is not None:
        lines.append(f"schedulers ({len(schedulers)}):")
        width = max((len(r["name"]) for r in schedulers), default=0)
        lines += [f"  {r['name']:<{width}}  {r['family']:<11} {r['tool']}" for r in schedulers]
        used = sorted({r["family"] for r in schedulers} & set(families))
        if used:
            lines += ["families:"] + [f"  {f:<11} {families[f]}" for f in used]
    presets = selected.get("presets")
    if presets is not None:
        lines.append(f"presets ({len(presets)}):")
        width = max((len(r["name"]) for r in presets), default=0)
        lines += [
            f"  {r['name']:<{width}}  {r['scheduler']:<32} {r['latent_channels']:>2} channels, "
            f"1/{r['vae_scale_factor']}{', packed 2x2' if r['pack_factor'] > 1 else ''}  "
            f"{r['repo']}"
            for r in presets
        ]
    tools = selected.get("tools")
    if tools is not None:
        lines.append("tools (scheduler names are '<tool>:<name>'; diffusers: the class name):")
        lines += [f"  {tool} ({len(names)}): {', '.join(names)}" for tool, names in tools.items()]
    excluded = selected.get("excluded")
    if excluded is not None:
        lines.append(f"not reproduced ({len(excluded)}):")
        lines += [f"  {r['name']}: {r['reason']}" for r in excluded]
    return "\n".join(lines) + "\n"
