"""Hostile publishers against the running pipeline with the address guard on (the default).

One run, ``WIREWATCH_ALLOW_PRIVATE_ADDRESSES=false``, beside a small good
corpus. The poller lives on a fake internet (``fakenet/sitecustomize.py``):
``*.public.test`` names resolve to a public address that is routed to the
loopback feed server, and a second loopback server plays the internal service
nobody may reach. Publishers that:

* redirect to loopback (by address and by name), to 169.254.169.254 and to
  its NAT64 form;
* sit behind DNS that answers a public address, then loopback (rebinding);
* serve ``Content-Encoding: gzip, gzip`` around 256 MiB of zeros, and a
  single-layer gzip bomb of 64 MiB;
* hide a billion-laughs DTD behind an unclosed comment;
* ask for credentials and redirect to another origin;
* link an item to a 4 kB host name;
* are declared with a password and an API key in the URL, and answer 404.

Asserted: the internal server received nothing, each of those feeds failed
with the documented kind, credentials never reached the other origin, the
poller's peak memory stayed bounded, nothing crashed or stalled (the corpus
and the three good hostile stories are stored exactly once), and no secret
reached a log or the stored ``last_error``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sqlite3
import zlib
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.faults.feedserver import Document, FeedServer
from tests.faults.services import ROOT

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

PUBLIC = "93.184.216.34"
FAKENET = Path(__file__).resolve().parent / "fakenet"
TOKEN, COOKIE = "Bearer cred-canary-5c1d", "session=cookie-canary-77ae"
URL_PASSWORD, URL_KEY = "pa55-canary-e3b0", "key-canary-98fc"
PEAK_RSS_LIMIT_MIB = 400


def rss(base: str, *items: tuple[str, str, str]) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid isPermaLink='false'>{g}</guid>"
        f"<description>Gunmen kidnapped a trader in Cali. ({g})</description></item>"
        for g, link, t in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>hostile</title>'
        f"<link>{base}/</link><language>en</language>{body}</channel></rss>"
    ).encode()


def nested_gzip(inner_mib: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    inner = b"".join(packer.compress(zeros) for _ in range(inner_mib)) + packer.flush()
    return gzip.compress(inner, 9)


def billion_laughs_behind_a_comment() -> bytes:
    levels = ['<!ENTITY a0 "' + "ha" * 100 + '">']
    levels += [f'<!ENTITY a{i} "' + f"&a{i - 1};" * 10 + '">' for i in range(1, 8)]
    return (
        '<?xml version="1.0"?><!-- <a <!DOCTYPE rss [' + "".join(levels) + "]>"
        '<rss version="2.0"><channel><title>&a7;</title><item><title>&a7;</title>'
        "<link>http://x.example/laughs</link></item></channel></rss>"
    ).encode()


def redirect(location: str) -> Document:
    return Document(b"", status=302, content_type="text/plain", headers=(("Location", location),))


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert match, status
    return int(match.group(1)) / 1024


def test_hostile_publishers_reach_nothing_they_should_not(pipeline) -> None:  # type: ignore[no-untyped-def]
    internal = FeedServer()  # the internal service: must never see a request
    internal.add_document("/secret.xml", Document(b"<rss/>"))
    pipe = pipeline(1, entries=20, feeds=2, stream_seconds=3)
    server = pipe.server
    port, base = server.port, server.base
    wire = f"http://wire.public.test:{port}"
    try:
        docs = {
            "/hostile/loopback.xml": redirect(f"http://127.0.0.1:{internal.port}/secret.xml"),
            "/hostile/localhost.xml": redirect(f"http://localhost:{internal.port}/secret.xml"),
            "/hostile/metadata.xml": redirect("http://169.254.169.254/latest/meta-data/"),
            "/hostile/nat64.xml": redirect("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/"),
            "/secret.xml": Document(  # closes the connection: every poll resolves the name again
                rss(base, ("rebind-1", f"{base}/r/rebind-story", "Rebind story")),
                headers=(("Connection", "close"),),
            ),
            "/hostile/stacked.xml": Document(nested_gzip(256), headers=(("Content-Encoding", "gzip, gzip"),)),
            "/hostile/bomb.xml": Document(
                gzip.compress(b"\0" * (64 << 20), 9), headers=(("Content-Encoding", "gzip"),)
            ),
            "/hostile/laughs.xml": Document(billion_laughs_behind_a_comment()),
            "/hostile/cred.xml": redirect(f"http://cdn.public.test:{port}/hostile/cred-target.xml"),
            "/hostile/cred-target.xml": Document(
                rss(base, ("cred-1", f"{base}/c/cred-story", "Credentialed story"))
            ),
            "/hostile/longhost.xml": Document(
                rss(base, ("longhost-1", f"http://{'a' * 4000}.example/story", "Long host story"))
            ),
        }
        for path, doc in docs.items():
            server.add_document(path, doc)
        hostile = {
            "hostile-loopback": f"{wire}/hostile/loopback.xml",
            "hostile-localhost": f"{wire}/hostile/localhost.xml",
            "hostile-metadata": f"{wire}/hostile/metadata.xml",
            "hostile-nat64": f"{wire}/hostile/nat64.xml",
            "hostile-rebind": f"http://rebind.public.test:{internal.port}/secret.xml",
            "hostile-stacked": f"{wire}/hostile/stacked.xml",
            "hostile-bomb": f"{wire}/hostile/bomb.xml",
            "hostile-laughs": f"{wire}/hostile/laughs.xml",
            "hostile-longhost": f"{wire}/hostile/longhost.xml",
            "hostile-secret": f"http://reader:{URL_PASSWORD}@wire.public.test:{port}/missing.xml?apikey={URL_KEY}",
        }
        # The corpus feeds too are reached by a public name: 127.0.0.1 itself is refused now.
        lines = pipe.feeds_file.read_text().replace(f"url: {base}/", f"url: {wire}/").splitlines()
        for name, url in hostile.items():
            lines += [f"  - name: {name}", f"    url: '{url}'", "    interval: 1"]
        lines += [
            "  - name: hostile-cred",
            f"    url: {wire}/hostile/cred.xml",
            "    interval: 1",
            f"    headers: {{Authorization: '{TOKEN}', Cookie: '{COOKIE}'}}",
        ]
        pipe.feeds_file.write_text("\n".join(lines) + "\n")
        fake_net = {
            "hosts": {
                "wire.public.test": [[PUBLIC]],
                "cdn.public.test": [[PUBLIC]],
                "rebind.public.test": [[PUBLIC], ["127.0.0.1"]],
            },
            "routes": {PUBLIC: ["127.0.0.1", port]},
        }
        pipe.env.update(
            {
                "WIREWATCH_ALLOW_PRIVATE_ADDRESSES": "false",
                "WIREWATCH_TEST_FAKE_NET": json.dumps(fake_net),
                "PYTHONPATH": os.pathsep.join([str(FAKENET), os.environ.get("PYTHONPATH") or str(ROOT)]),
            }
        )
        pipe.faults.plan("hostile publishers beside a 20-entry corpus; private addresses refused")
        pipe.start()
        stories = {f"{base}/r/rebind-story", f"{base}/c/cred-story"}
        pipe.wait_drained(expected=20 + len(stories) + 1)  # + the long-host story, stored without its link
        pipe.sleep(3.0)  # a few more cycles of every hostile feed (interval 1 s, backoff cap 4 s)
        poller = pipe.supervisor["poll-1"]
        assert poller.proc is not None
        peak = peak_rss_mib(poller.proc.pid)

        assert sum(internal.requests.values()) == 0, f"the internal service was reached: {internal.requests}"
        assert server.requests["/hostile/stacked.xml"] >= 2  # polled again and again, not stuck
        assert peak < PEAK_RSS_LIMIT_MIB, f"poller peak RSS {peak:.0f} MiB"
        log = poller.output()
        expected_kinds = {
            "hostile-loopback": "blocked_address",
            "hostile-localhost": "blocked_address",
            "hostile-metadata": "blocked_address",
            "hostile-nat64": "blocked_address",
            "hostile-rebind": "blocked_address",  # the second, private answer is refused
            "hostile-stacked": "decoding",
            "hostile-bomb": "too_large",
            "hostile-laughs": "hostile",
            "hostile-secret": "http_404",
        }
        for name, kind in expected_kinds.items():
            assert re.search(rf"feed {name} failed \({kind}", log), f"{name}: no '{kind}' failure in the log"
        cred_hops = server.headers["/hostile/cred.xml"]
        target_hops = server.headers["/hostile/cred-target.xml"]
        assert cred_hops and all(h.get("authorization") == TOKEN for h in cred_hops)  # its own origin: yes
        assert target_hops and not any("authorization" in h or "cookie" in h for h in target_hops)

        verdict = pipe.assert_exactly_once(allow_extra=frozenset(stories | {None}))  # type: ignore[arg-type]
        assert verdict.stored == 20 + len(stories) + 1
        with pipe.engine.connect() as conn:
            long_host = conn.execute(
                text("SELECT url, source FROM articles WHERE title = 'Long host story'")
            ).one()
        assert long_host.url is None and len(long_host.source or "") < 254
        pipe.assert_no_crashes()
        pipe.assert_no_secrets_logged()
        for name, output in pipe.supervisor.logs().items():
            for secret in (URL_PASSWORD, URL_KEY, TOKEN, COOKIE):
                assert secret not in output, f"{name} logged {secret}"
        with sqlite3.connect(pipe.workdir / "state" / "poller.sqlite3") as db:
            query = "SELECT last_error FROM feeds WHERE name = 'hostile-secret'"
            (last_error,) = db.execute(query).fetchone()
        assert last_error and URL_PASSWORD not in last_error and URL_KEY not in last_error
    finally:
        internal.close()
