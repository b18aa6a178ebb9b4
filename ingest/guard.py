"""The address guard: feeds, redirects and article pages reach public addresses only (unless allowed).

Owns the one rule "is this address public?" and the place where it is
enforced: the network backend under httpx's connection pool. A host name is
resolved *once*, every answer is checked, and the socket is connected to one
of the checked addresses — so a resolver that answers a public address to the
check and a private one to the connect (DNS rebinding) has nothing to play
with. TLS is unaffected: httpcore still sends the host name as SNI, verifies
the certificate against it and sends it as ``Host``; only the TCP connect
goes to an address chosen here.

What counts as public: :attr:`ipaddress.IPv6Address.is_global` and its IPv4
twin, plus the IPv4 address embedded in IPv4-mapped (``::ffff:a.b.c.d``),
IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::/96``; the local-use
``64:ff9b:1::/48`` is refused outright), 6to4 (``2002::/16``) and Teredo
(``2001::/32``) addresses must be public too: each of them can route to an
IPv4 address that the outer one hides.

Seams for tests: ``resolver`` (an async ``(host, port) -> [address]``) and
``backend`` (the real network backend underneath); when not given, the
module's :func:`system_resolver` and :func:`default_backend` are looked up at
call time (the fault tests replace them in the poller's process). It must
not know about feeds, parsing or state.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from wirewatch.errors import WirewatchError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses`` (strings, in the order to try them)."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


class AddressRefusedError(WirewatchError):
    """A host resolves to (or is) a non-public address. ``fetch`` maps it onto BlockedAddressError."""

    retriable = False

    def __init__(self, host: str, address: str) -> None:
        super().__init__(
            f"{host} resolves to {address}, a non-public address "
            "(set WIREWATCH_ALLOW_PRIVATE_ADDRESSES=true to allow)"
        )
        self.host = host
        self.address = address


class ResolutionError(WirewatchError):
    """The host name did not resolve (retriable: DNS outages pass)."""

    retriable = True


def is_public(address: IPAddress | str) -> bool:
    """True when ``address`` and every IPv4 address it embeds are globally routable."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv4Address):
        return ip.is_global and not ip.is_multicast
    if ip in _NAT64_LOCAL:
        return False
    if not ip.is_global or ip.is_multicast:
        return False
    return all(is_public(inner) for inner in embedded_ipv4(ip))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address can lead to (mapped, compatible, NAT64, 6to4, Teredo)."""
    found: list[ipaddress.IPv4Address] = []
    value = int(ip)
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d (deprecated IPv4-compatible form)
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def literal_address(host: str) -> IPAddress | None:
    """The address when ``host`` is an IP literal (``[::1]`` included), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_literal(host: str) -> None:
    """Refuse an IP-literal host that is not public (no DNS: names are checked at connect time)."""
    ip = literal_address(host)
    if ip is not None and not is_public(ip):
        raise AddressRefusedError(host, str(ip))


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer (``getaddrinfo``), IPv6 and IPv4, in its order."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ResolutionError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def checked_addresses(host: str, port: int, resolver: Resolver) -> list[str]:
    """Resolve ``host`` once and return its addresses if *every* one is public; else refuse."""
    literal = literal_address(host)
    answers = [str(literal)] if literal is not None else await resolver(host, port)
    if not answers:
        raise ResolutionError(f"cannot resolve {host}: no addresses")
    for answer in answers:
        ip = literal_address(answer)
        if ip is None or not is_public(ip):
            raise AddressRefusedError(host, answer)
    return answers


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to a checked address; TLS and everything else is ``backend``'s."""

    def __init__(self, resolver: Resolver, backend: httpcore.AsyncNetworkBackend) -> None:
        self._resolver = resolver
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(host, port, self._resolver)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                log.debug("connecting to %s (%s) failed: %r", host, address, exc)
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the poller")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def default_backend() -> httpcore.AsyncNetworkBackend:
    return httpcore.AnyIOBackend()


def guarded_transport(
    limits: httpx.Limits,
    resolver: Resolver | None = None,
    backend: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport (its error mapping included) over a :class:`GuardedBackend`.

    No proxy from the environment: a proxy resolves names itself, which would defeat the check.
    """
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(resolver or system_resolver, backend or default_backend()),
    )
    return transport
