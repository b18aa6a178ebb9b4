"""The address guard: what counts as public, one resolution per connection, connecting where it checked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
import pytest

from ingest.config import PollerSettings
from ingest.fetch import BlockedAddressError, Fetcher, FetchError
from ingest.guard import AddressRefusedError, guarded_transport, is_public

PUBLIC_V4 = "93.184.216.34"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",  # IPv4-compatible
        "::a9fe:a9fe",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::1",  # local-use NAT64
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    ],
)
def test_non_public_addresses_in_every_form(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize(
    "address", [PUBLIC_V4, "8.8.8.8", "2606:4700::1111", "64:ff9b::5db8:d822", "2002:5db8:d822::1"]
)
def test_public_addresses(address: str) -> None:
    assert is_public(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::7f00:1]/rss",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[2002:7f00:1::1]/rss",
        "http://[::127.0.0.1]/rss",
        "http://[::ffff:7f00:1]/rss",
    ],
)
def test_embedded_private_ipv4_literals_are_refused_before_any_request(url: str) -> None:
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(200, content=b"<rss/>")

    async def go() -> None:
        fetcher = Fetcher(
            PollerSettings(allow_private_addresses=False), transport=httpx.MockTransport(handler)
        )
        try:
            await fetcher.fetch(url)
        finally:
            await fetcher.aclose()

    with pytest.raises(BlockedAddressError):
        asyncio.run(go())
    assert requested == []


def test_private_addresses_are_refused_by_default() -> None:
    assert PollerSettings().allow_private_addresses is False


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Where the pool asked to connect; every connect fails (nothing leaves the test)."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        raise httpcore.ConnectError("test backend connects nowhere")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class RebindingResolver:
    """Answers a public address first, loopback afterwards (DNS rebinding)."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.answers[min(len(self.calls) - 1, len(self.answers) - 1)]


def test_connects_to_the_address_it_checked_not_to_a_second_answer() -> None:
    resolver = RebindingResolver([[PUBLIC_V4], ["127.0.0.1"]])
    backend = RecordingBackend()

    async def go() -> None:
        transport = guarded_transport(httpx.Limits(), resolver, backend)
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("https://rebind.example/feed.xml")

    asyncio.run(go())
    assert resolver.calls == ["rebind.example"]  # resolved once, by the guard
    assert backend.connects == [(PUBLIC_V4, 443)]  # and connected to exactly what was checked


@pytest.mark.parametrize(
    "answer", [["127.0.0.1"], [PUBLIC_V4, "10.0.0.7"], ["64:ff9b::a9fe:a9fe"], ["::ffff:127.0.0.1"]]
)
def test_a_name_with_any_private_answer_is_refused_without_connecting(answer: list[str]) -> None:
    backend = RecordingBackend()

    async def go() -> None:
        transport = guarded_transport(httpx.Limits(), RebindingResolver([answer]), backend)
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("http://internal.example/feed.xml")

    with pytest.raises(AddressRefusedError, match="non-public"):
        asyncio.run(go())
    assert backend.connects == []


def test_the_fetcher_maps_a_refused_name_to_blocked_address() -> None:
    async def go() -> None:
        fetcher = Fetcher(PollerSettings(), resolver=RebindingResolver([["169.254.169.254"]]))
        try:
            await fetcher.fetch("http://metadata.example/latest/meta-data/")
        finally:
            await fetcher.aclose()

    with pytest.raises(BlockedAddressError, match=r"169\.254\.169\.254"):
        asyncio.run(go())


def test_dns_failure_is_a_retriable_fetch_error() -> None:
    async def nothing(host: str, port: int) -> list[str]:
        return []

    async def go() -> None:
        fetcher = Fetcher(PollerSettings(), resolver=nothing)
        try:
            await fetcher.fetch("http://nowhere.example/feed.xml")
        finally:
            await fetcher.aclose()

    with pytest.raises(FetchError) as caught:
        asyncio.run(go())
    assert caught.value.kind == "dns" and caught.value.retriable
