"""The ``sigmaserve`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sigmaserve",
        description="Diffusion noise schedules and torch-exact seeded latents.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the gRPC server",
        description="Run the gRPC server (NoiseService, health, reflection). Every flag also "
        "reads SIGMASERVE_<FLAG> from the environment, e.g. SIGMASERVE_PORT.",
    )
    from sigmaserve.server.config import add_arguments

    add_arguments(serve)
    serve.set_defaults(func=_serve)
    from sigmaserve.commands import explain, sample, schedule
    from sigmaserve.worker import cli as worker_cli

    for command in (schedule, explain, sample, worker_cli):
        command.register(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from sigmaserve.server import serve
    from sigmaserve.server.config import StartupError, from_args

    try:
        config = from_args(args)
        config.validate()
        logging.basicConfig(
            level=config.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
        asyncio.run(serve(config))
    except StartupError as exc:  # a configuration the server cannot run with: one line
        print(f"sigmaserve: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
