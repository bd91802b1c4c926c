"""The server rules by name: `SERVERS` and `get_server`."""

from __future__ import annotations

from typing import Any

from asyncjax._validate import did_you_mean
from asyncjax.servers.asgd import asgd
from asyncjax.servers.base import Server
from asyncjax.servers.fedbuff import fedbuff
from asyncjax.servers.ia2sgd import ia2sgd
from asyncjax.servers.malenia import malenia
from asyncjax.servers.msync import msync
from asyncjax.servers.rennala import rennala
from asyncjax.servers.ringleader import ringleader
from asyncjax.servers.ringmaster import ringmaster

SERVERS = {
    "asgd": asgd,
    "rennala": rennala,
    "msync": msync,
    "ringmaster": ringmaster,
    "fedbuff": fedbuff,
    "ia2sgd": ia2sgd,
    "malenia": malenia,
    "ringleader": ringleader,
}


def get_server(server: Server | str | None, **options: Any) -> Server | None:
    """A server rule by name (with its factory's options) or as given; None stays None.

    Example::

        aj.servers.get_server("ringmaster", stops=False)
    """
    if server is None or isinstance(server, Server):
        if options:
            raise ValueError(f"options {sorted(options)} need a server given by name")
        return server
    factory = next((n for n, f in SERVERS.items() if f is server), None)
    if factory is not None:  # the factory itself, not a rule
        raise ValueError(
            f"server=asyncjax.servers.{factory} is the factory: call it, "
            f"server=asyncjax.servers.{factory}(), or name it, server={factory!r}"
        )
    if not isinstance(server, str) or server not in SERVERS:
        raise ValueError(
            f"unknown server {server!r}{did_you_mean(server, SERVERS)}; "
            f"choose one of {', '.join(SERVERS)}"
        )
    try:
        return SERVERS[server](**options)
    except TypeError:
        raise ValueError(f"server {server!r} takes no option(s) {sorted(options)}") from None
