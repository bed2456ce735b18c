"""Python clients of the sigmaserve gRPC service."""

from sigmaserve.client.aio import AsyncClient
from sigmaserve.client.common import RemoteError, ServerInfo
from sigmaserve.client.sync import Client

__all__ = ["AsyncClient", "Client", "RemoteError", "ServerInfo"]
