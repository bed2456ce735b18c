"""The sigmaserve gRPC server (``sigmaserve serve``)."""

from sigmaserve.server.app import (
    PortInUseError,
    RunningServer,
    serve,
    server_in_thread,
    start_server,
)
from sigmaserve.server.config import ServerConfig, StartupError

__all__ = [
    "PortInUseError",
    "RunningServer",
    "ServerConfig",
    "StartupError",
    "serve",
    "server_in_thread",
    "start_server",
]
