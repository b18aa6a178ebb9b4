"""The pipeline's stages as real subprocesses (``wirewatch poll|classify|store``) that a test can break.

Owns process lifecycle for the fault tests: start with a given environment,
``kill -9``, graceful stop, restart, and a supervisor pass that restarts a
stage that died by itself (what Kubernetes would do) while recording it as a
crash, so a test can tell "survived the fault" from "was restarted after it".
Every incarnation's stdout/stderr goes to one log file per service, which the
tests scan afterwards (errors, leaked credentials).

It knows nothing about feeds, topics or databases: the caller builds the env.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Crash:
    service: str
    returncode: int
    tail: str


@dataclass
class Service:
    """One stage process. ``start`` again after a kill starts a new incarnation (same log file)."""

    name: str
    role: str
    env: dict[str, str]
    log_path: Path
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    incarnations: int = 0
    stopped_on_purpose: bool = False
    _log_handle: object = field(default=None, repr=False)

    def start(self) -> None:
        if self.alive():
            return
        self._close_log()
        handle = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.incarnations += 1
        handle.write(f"\n===== {self.name} incarnation {self.incarnations} =====\n".encode())
        handle.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", self.role, *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        self._log_handle = handle
        self.stopped_on_purpose = False
        log.info("started %s (pid %d, incarnation %d)", self.name, self.proc.pid, self.incarnations)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.proc is not None and self.alive():
            self.stopped_on_purpose = True
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            log.info("kill -9 %s (pid %d)", self.name, self.proc.pid)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        self.stopped_on_purpose = True
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM for %.0fs; killing it", self.name, timeout)
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._close_log()
        return self.proc.returncode

    def crashed(self) -> int | None:
        """The exit code if the process ended without being told to, else None."""
        if self.proc is None or self.stopped_on_purpose:
            return None
        return self.proc.poll()

    def output(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text("utf-8", "replace")
        return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log_handle is not None:
            with contextlib.suppress(OSError):
                self._log_handle.close()  # type: ignore[attr-defined]
            self._log_handle = None


class Supervisor:
    """A set of services; :meth:`supervise` restarts crashed ones and records each crash."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.services: dict[str, Service] = {}
        self.crashes: list[Crash] = []
        self.restart_crashed = True

    def add(self, name: str, role: str, env: dict[str, str], *args: str, start: bool = True) -> Service:
        service = Service(name, role, env, self.log_dir / f"{name}.log", tuple(args))
        self.services[name] = service
        if start:
            service.start()
        return service

    def __getitem__(self, name: str) -> Service:
        return self.services[name]

    def supervise(self) -> None:
        for service in self.services.values():
            code = service.crashed()
            if code is None:
                continue
            crash = Crash(service.name, code, service.tail(30))
            self.crashes.append(crash)
            log.warning("%s exited by itself with %d:\n%s", service.name, code, crash.tail)
            if self.restart_crashed:
                service.start()
            else:
                service.stopped_on_purpose = True

    def stop_all(self, timeout: float = 30.0) -> None:
        for service in self.services.values():
            service.terminate(timeout)

    def logs(self) -> dict[str, str]:
        return {name: s.output() for name, s in self.services.items()}

    def tails(self, lines: int = 25) -> str:
        return "\n".join(
            f"--- {name} ({s.log_path}) ---\n{s.tail(lines)}" for name, s in self.services.items()
        )


def base_env() -> dict[str, str]:
    """The test process's environment without any WIREWATCH_* setting (each test sets its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def wait_for(predicate: object, timeout: float, interval: float = 0.25, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
