"""A fake internet for the poller of the hostile-publisher fault run (loaded by Python at start-up).

The hostile-publisher run puts this folder first on ``PYTHONPATH`` and
describes the fake network in ``WIREWATCH_TEST_FAKE_NET`` (JSON)::

    {"hosts":  {"wire.public.test": [["93.184.216.34"]],                 # answers, one list per lookup;
                "rebind.public.test": [["93.184.216.34"], ["127.0.0.1"]]},  # the last one repeats
     "routes": {"93.184.216.34": ["127.0.0.1", 40123]}}                  # connect there instead

so the poller, with ``WIREWATCH_ALLOW_PRIVATE_ADDRESSES=false``, sees public
addresses for names that really live on the loopback feed server, and a
rebinding resolver can be scripted. It replaces the two seams of
:mod:`ingest.guard` (``system_resolver`` and ``default_backend``) and nothing
else: names it does not know go to the real resolver, addresses it does not
route are really connected to (which is how a guard failure would show up, as
a request on the loopback "internal" server). Without the variable it does
nothing. Self-contained on purpose: at start-up only the installed packages
are importable.
"""

from __future__ import annotations

import json
import os


def _install(spec: dict) -> None:  # type: ignore[type-arg]
    from collections.abc import Iterable
    from typing import Any

    import httpcore

    from ingest import guard

    hosts: dict[str, list[list[str]]] = spec.get("hosts", {})
    routes: dict[str, list[Any]] = spec.get("routes", {})
    lookups: dict[str, int] = {}
    real_resolver = guard.system_resolver

    async def resolver(host: str, port: int) -> list[str]:
        answers = hosts.get(host.lower())
        if answers is None:
            return await real_resolver(host, port)
        n = lookups.get(host, 0)
        lookups[host] = n + 1
        return list(answers[min(n, len(answers) - 1)])

    class RoutingBackend(httpcore.AsyncNetworkBackend):
        def __init__(self) -> None:
            self._real = httpcore.AnyIOBackend()

        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.AsyncNetworkStream:
            target = routes.get(host)
            if target is not None:
                host, port = str(target[0]), int(target[1])
            return await self._real.connect_tcp(
                host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
            )

        async def sleep(self, seconds: float) -> None:
            await self._real.sleep(seconds)

    guard.system_resolver = resolver  # type: ignore[assignment]
    guard.default_backend = RoutingBackend  # type: ignore[assignment]


_SPEC = os.environ.get("WIREWATCH_TEST_FAKE_NET")
if _SPEC:
    _install(json.loads(_SPEC))
