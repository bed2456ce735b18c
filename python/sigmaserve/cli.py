"""The ``sigmaserve`` command line.

Every mistake is one line on stderr and exit status 2, never a traceback: argparse's own errors
(``OneLineParser``), the library's ``InvalidArgumentError`` (whose message names the field and
the nearest valid names, from the core, also when a server answers it), a configuration the
server cannot start with, a file that cannot be read or written. A server that cannot be
reached or refuses the credentials is one line and status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from sigmaserve.commands.options import CommandError, OneLineParser

USAGE_ERROR = 2
# A server the command asked could not answer: the command line itself may be right.
REMOTE_FAILURE = 1


def build_parser() -> argparse.ArgumentParser:
    from sigmaserve import __version__

    parser = OneLineParser(
        prog="sigmaserve",
        description="Diffusion noise schedules and torch-exact seeded latents.",
    )
    parser.add_argument("--version", action="version", version=f"sigmaserve {__version__}")
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
    from sigmaserve.commands import catalog, explain, sample, schedule
    from sigmaserve.worker import cli as worker_cli

    for command in (schedule, explain, sample, catalog, worker_cli):
        command.register(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from sigmaserve.server import serve
    from sigmaserve.server.config import from_args

    config = from_args(args)
    config.validate()
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(serve(config))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command. A mistake is one line and status 2; a server
    that could not answer (unreachable, refusing the credentials) one line and status 1."""
    from sigmaserve.errors import SigmaserveError
    from sigmaserve.server.config import StartupError

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (SigmaserveError, StartupError, CommandError) as exc:
        return _fail(str(exc), REMOTE_FAILURE if _is_remote(exc) else USAGE_ERROR)
    except OSError as exc:  # a file to read or write: name it and the reason
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        return 130


def _is_remote(exc: Exception) -> bool:
    # RemoteError lives with the clients (grpc); it is only raised once they are imported.
    client = sys.modules.get("sigmaserve.client.common")
    return client is not None and isinstance(exc, client.RemoteError)


def _fail(message: str, status: int = USAGE_ERROR) -> int:
    # The message is one line: a multi-line message from a dependency is joined.
    print(f"sigmaserve: {' '.join(message.split())}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
