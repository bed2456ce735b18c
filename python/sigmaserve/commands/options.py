"""Parsing helpers shared by the subcommands: the one-line argument parser, ``--set``, seed
lists, and the ``--target`` options that send a command to a server instead of the library."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

# What argparse (3.11 to 3.13) writes for a value outside ``choices``.
_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>[^']*)' \(choose from (?P<choices>.*)\)")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes are one line on stderr, status 2, no usage block.

    An unknown command, choice or flag names the nearest valid ones (difflib over argparse's
    own names, as argparse's ``suggest_on_error`` does from Python 3.14); scheduler and preset
    names are not argparse choices: the core names their nearest matches itself."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}{self._choice_hint(message)}\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self._command_parser(parsed) or self
            flags = [s for a in parser._actions for s in a.option_strings]
            hints = [
                f"did you mean {match[0]}?"
                for extra in extras
                if extra.startswith("-")
                and (match := difflib.get_close_matches(extra.split("=")[0], flags, n=1))
            ]
            suffix = f" ({'; '.join(hints)})" if hints else ""
            parser.error(f"unrecognized arguments: {' '.join(extras)}{suffix}")
        return parsed

    def _command_parser(self, parsed: argparse.Namespace) -> argparse.ArgumentParser | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(parsed, action.dest or "", None) or "")
                if isinstance(chosen, argparse.ArgumentParser):
                    return chosen
        return None

    @staticmethod
    def _choice_hint(message: str) -> str:
        found = _INVALID_CHOICE.search(message)
        if found is None:
            return ""
        choices = re.findall(r"'([^']*)'", found["choices"])
        match = difflib.get_close_matches(found["value"], choices, n=1)
        return f"; did you mean {match[0]!r}?" if match else ""


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
    """``0-9999``, ``1,5,9`` or a mix (``0-3,10``) as a list of seeds, in order. A leading minus
    is a negative seed (``-1``, ``-5--3``)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        found = re.fullmatch(r"(-?\d+)(?:-(-?\d+))?", part)
        if found is None:
            raise argparse.ArgumentTypeError(
                f"bad seed list {text!r}: expected 0-9, 1,5,9 or 0-3,10"
            )
        first = int(found[1])
        last = first if found[2] is None else int(found[2])
        if last < first:
            raise argparse.ArgumentTypeError(f"empty seed range {part!r}")
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


# ---- --target: ask a server ------------------------------------------------------------------


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """``--target`` plus the connection options of ``sigmaserve.Client``."""
    group = parser.add_argument_group("ask a server instead of the local library (same output)")
    group.add_argument(
        "--target",
        metavar="HOST:PORT",
        help="a sigmaserve server (any gRPC target: host:port, dns:///name:port)",
    )
    group.add_argument(
        "--token",
        help="bearer token the server requires (shows in the process list: prefer --token-file)",
    )
    group.add_argument("--token-file", help="read the bearer token from this file")
    group.add_argument(
        "--tls",
        action="store_true",
        help="connect over TLS trusting the system CAs (implied by the --tls-* files)",
    )
    group.add_argument("--tls-ca", metavar="PEM", help="CA bundle that signed the server's cert")
    group.add_argument(
        "--tls-cert", metavar="PEM", help="client certificate (mutual TLS; needs --tls-key)"
    )
    group.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")


class CommandError(Exception):
    """A command line the command cannot run; the CLI prints it as one line (status 2)."""


def bearer_token(token: str | None, token_file: str | None, flag: str = "--token") -> str:
    """The token as ``sigmaserve serve`` reads it (``ServerConfig.bearer_token``): the file
    wins, surrounding whitespace goes, an unreadable or empty file is an error."""
    from sigmaserve.server.config import ServerConfig, StartupError

    try:
        return ServerConfig(token=token or "", token_file=token_file or "").bearer_token()
    except StartupError as exc:
        raise CommandError(str(exc).replace("--token", flag, 1)) from None


def channel_tls(
    tls: bool, ca: str | None, cert: str | None, key: str | None, prefix: str = "--"
) -> dict[str, Any]:
    """``sigmaserve.Client`` TLS keyword arguments from the TLS flags (``{}``: plaintext)."""
    if bool(cert) != bool(key):
        raise CommandError(f"{prefix}tls-cert and {prefix}tls-key go together (mutual TLS)")
    for flag, path in (("ca", ca), ("cert", cert), ("key", key)):
        if path and not Path(path).is_file():
            raise CommandError(f"{prefix}tls-{flag}: {path} is not a readable file")
    if ca or cert:
        return {"root_certificates": ca, "private_key": key, "certificate_chain": cert}
    if tls:
        import grpc

        return {"credentials": grpc.ssl_channel_credentials()}
    return {}


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """``sigmaserve.Client`` keyword arguments from the ``--target`` group's flags."""
    token = bearer_token(args.token, args.token_file)
    tls = channel_tls(args.tls, args.tls_ca, args.tls_cert, args.tls_key)
    return {"token": token or None, **tls}


@contextlib.contextmanager
def noise_source(args: argparse.Namespace) -> Iterator[Any]:
    """What the command computes with: a ``sigmaserve.Client`` for ``--target``, else the
    ``sigmaserve`` module itself (the same functions with the same arguments and results)."""
    if not args.target:
        given = [
            flag
            for flag, value in (
                ("--token", args.token),
                ("--token-file", args.token_file),
                ("--tls", args.tls),
                ("--tls-ca", args.tls_ca),
                ("--tls-cert", args.tls_cert),
                ("--tls-key", args.tls_key),
            )
            if value
        ]
        if given:
            raise CommandError(f"{given[0]} needs --target HOST:PORT")
        import sigmaserve

        yield sigmaserve
        return
    from sigmaserve import Client

    with Client(args.target, **client_options(args)) as client:
        yield client
