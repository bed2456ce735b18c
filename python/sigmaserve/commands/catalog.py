"""``sigmaserve list``: the names the library (or, with ``--target``, a server) accepts.

Everything listed is ``sigmaserve.catalog()`` (gRPC ``GetCatalog``), the core's tables; this
module only filters and prints them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sigmaserve.commands.options import CommandError, add_target_arguments, noise_source

KINDS = ("schedulers", "aliases", "presets", "tools")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "list",
        help="list the schedulers, tool aliases, presets and ecosystem tools (with filters)",
        description="List the names sigmaserve accepts: diffusers scheduler classes with their "
        "family, ecosystem schedules ('<tool>:<name>'), the A1111 and ComfyUI sampler names "
        "that mean a diffusers scheduler, model presets, and the tools. Filters combine; "
        "--format json prints the same records as JSON.",
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
        "consistency); for presets and aliases, the family of their scheduler",
    )
    parser.add_argument(
        "--tool",
        help="only names of this tool: diffusers, comfyui, a1111, kdiffusion, ays",
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
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def records(catalog: dict[str, Any]) -> dict[str, Any]:
    """The catalog's records in the shape ``list`` filters and prints: presets and aliases get
    their scheduler's ``family``, ``tools`` the names of each tool, ``families`` a dict."""
    families = {f["name"]: f["description"] for f in catalog["families"]}
    family_of = {r["name"]: r["family"] for r in catalog["schedulers"]}
    tools: dict[str, list[str]] = {}
    for record in catalog["schedulers"]:
        tools.setdefault(record["tool"], []).append(record["name"].split(":", 1)[-1])
    presets = [
        {
            "name": p["name"],
            "repo": p["repo"],
            "pipeline": p["pipeline"],
            "scheduler": p["scheduler"],
            "family": family_of.get(p["scheduler"], ""),
            "layout": p["layout"],
            "aliases": p["aliases"],
        }
        for p in catalog["presets"]
    ]
    aliases = [{**a, "family": family_of.get(a["scheduler"], "")} for a in catalog["aliases"]]
    return {
        "schedulers": catalog["schedulers"],
        "aliases": aliases,
        "presets": presets,
        "tools": tools,
        "families": families,
        "excluded": catalog["excluded"],
    }


def filtered(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The records ``args`` asks for; an unknown --family or --tool is an error naming the
    valid ones."""

    def check(flag: str, value: str | None, valid: list[str]) -> None:
        if value is not None and value not in valid:
            raise CommandError(f"--{flag}: unknown {flag} {value!r}; expected one of {valid}")

    check("family", args.family, list(data["families"]))
    check("tool", args.tool, list(data["tools"]))
    text = (args.match or "").lower()

    def keep(record: dict[str, Any]) -> bool:
        return (
            (args.family is None or record.get("family") == args.family)
            and (args.tool is None or record.get("tool", "diffusers") == args.tool)
            and text in record["name"].lower()
        )

    out: dict[str, Any] = {}
    for kind in ("schedulers", "aliases", "presets"):
        if args.kind in (kind, "all"):
            out[kind] = [r for r in data[kind] if keep(r)]
    if args.tool not in (None, "diffusers"):
        out.pop("presets", None)  # presets belong to no ecosystem tool
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
    with noise_source(args) as source:
        data = records(source.catalog())
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
    aliases = selected.get("aliases")
    if aliases is not None:
        lines.append(f"tool sampler names ({len(aliases)}):")
        width = max((len(r["name"]) for r in aliases), default=0)
        lines += [
            f"  {r['name']:<{width}}  {r['tool']:<7} {r['scheduler']}"
            + "".join(f" {k}={v}" for k, v in r["options"].items())
            for r in aliases
        ]
    presets = selected.get("presets")
    if presets is not None:
        lines.append(f"presets ({len(presets)}):")
        width = max((len(r["name"]) for r in presets), default=0)
        lines += [f"  {r['name']:<{width}}  {_preset_line(r)}" for r in presets]
    tools = selected.get("tools")
    if tools is not None:
        lines.append("tools (scheduler names are '<tool>:<name>'; diffusers: the class name):")
        lines += [f"  {tool} ({len(names)}): {', '.join(names)}" for tool, names in tools.items()]
    excluded = selected.get("excluded")
    if excluded is not None:
        lines.append(f"not reproduced ({len(excluded)}):")
        lines += [f"  {r['name']}: {r['reason']}" for r in excluded]
    return "\n".join(lines) + "\n"


def _preset_line(record: dict[str, Any]) -> str:
    layout = record["layout"]
    latents = f"{layout['channels']} channels, 1/{layout['vae_scale_factor']}"
    if layout["vae_temporal_factor"]:
        latents += f" x 1/{layout['vae_temporal_factor']} frames"
    if layout["pack_factor"] > 1:
        latents += f", packed {layout['pack_factor']}x{layout['pack_factor']}"
    return f"{record['scheduler']:<32} {latents}  {record['repo']}"
