"""Real `oms-connector` processes for end-to-end tests: started with a clean environment, output in a log file,
readiness awaited with a bound, and always killed by the test's ``finally`` (or the ``Processes`` context)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from app.db import DatabaseUrl
from tests.support.signing import COMMERCE_TOKEN, OPERATOR_TOKEN, SECRET, rpc_body, signed_headers

REPO = Path(__file__).resolve().parents[2]
TEST_PLUGIN = '["tests.support.handlers:install"]'
# Variables of the caller's environment that would change how the connector behaves: never inherited.
_OWN_PREFIXES = (
    "OMS_",
    "DATABASE_URL",
    "OPERATOR_TOKEN",
    "COMMERCE_TOKEN",
    "HANDLER_PLUGINS",
    "RUN_",
    "INBOUND_WORKERS",
    "OUTBOUND_WORKERS",
    "LOG_",  # LOG_LEVEL, LOG_FORMAT, LOG_FILE
    "APP_ENV",
    "DATA_DIR",
)
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command() -> list[str]:
    script = Path(sys.executable).parent / "oms-connector"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def connector_env(database_url: DatabaseUrl, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(_OWN_PREFIXES)}
    env.update(
        DATABASE_URL=database_url.libpq,
        HANDLER_PLUGINS=TEST_PLUGIN,
        RUN_MIGRATIONS="false",
        OMS_SECRET=SECRET,
        OPERATOR_TOKEN=OPERATOR_TOKEN,
        COMMERCE_TOKEN=COMMERCE_TOKEN,
        OMS_REGISTER_AT_STARTUP="false",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


class ConnectorProcess:
    """One `oms-connector <args>` process; stdout and stderr go to ``log_path``."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], workdir: Path, port: int | None = None):
        self.name = name
        self.args = args
        self.env = dict(env)
        self.workdir = workdir  # the cwd: no stray `.env` of the repository is read
        self.port = port
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        assert self.port is not None, f"{self.name} has no HTTP port"
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> ConnectorProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*command(), *self.args],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        state = "running" if self.running() else f"exited with {self.proc.returncode if self.proc else None}"
        return f"--- {self.name} (pid {self.proc.pid if self.proc else '-'}, {state}) log ---\n{self.log()[-6000:]}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would; reaps the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)

    def terminate(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM and wait for a clean exit; returns the exit code (None if it did not exit in time)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop_cleanly(self, timeout_s: float = 30.0) -> None:
        """SIGTERM; the process must finish its shutdown and exit in time."""
        code = self.terminate(timeout_s)
        # uvicorn re-raises the SIGTERM it handled once its shutdown is complete: `serve` then ends "by SIGTERM".
        clean = code == 0 or (code == -signal.SIGTERM and "Application shutdown complete" in self.log())
        assert clean, f"{self.name} did not shut down cleanly (exit code {code})\n{self.describe()}"

    async def wait_for_log(self, text: str, timeout_s: float = 30.0) -> None:
        async def seen() -> bool:
            self._check_alive()
            return text in self.log()

        await wait_until(seen, timeout_s, f"{self.name} never logged {text!r}", self)

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as http:

            async def ready() -> bool:
                self._check_alive()
                try:
                    response = await http.get("/health/ready")
                except httpx.TransportError:
                    return False
                return response.status_code == 200

            await wait_until(ready, timeout_s, f"{self.name} never answered 200 on /health/ready", self)

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited early with {self.proc.returncode}\n{self.describe()}")


class Processes:
    """Starts connector processes and kills every one of them on exit, printing their logs if the test failed."""

    def __init__(self, workdir: Path, database_url: DatabaseUrl, **env: str) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.env = env
        self.started: list[ConnectorProcess] = []

    def serve(
        self, name: str = "serve", *, workers: bool = True, port: int | None = None, **env: str
    ) -> ConnectorProcess:
        port = port or free_port()
        args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        if not workers:
            args.append("--no-workers")
        return self._start(name, args, port, env)

    def worker(self, name: str = "worker", **env: str) -> ConnectorProcess:
        return self._start(name, ["worker"], None, env)

    def _start(self, name: str, args: list[str], port: int | None, env: Mapping[str, str]) -> ConnectorProcess:
        merged = connector_env(self.database_url, **{**self.env, **env})
        process = ConnectorProcess(name, args, merged, self.workdir, port)
        self.started.append(process)
        return process.start()

    def logs(self) -> str:
        return "\n".join(process.describe() for process in self.started)

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.kill_all()
        if exc_type is not None:
            sys.stderr.write(self.logs() + "\n")  # pytest shows it with the failure (captured stderr)


async def wait_until(
    check: Callable[[], Awaitable[T]],
    timeout_s: float,
    message: str | Callable[[], str],
    *context: ConnectorProcess,
    interval_s: float = 0.1,
) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``message`` (and the processes' logs)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            logs = "\n".join(process.describe() for process in context)
            raise AssertionError(f"{text} (waited {timeout_s:g} s)\n{logs}")
        await asyncio.sleep(interval_s)


def new_call(method: str, params: dict[str, Any]) -> tuple[str, bytes, dict[str, str]]:
    """A signed OMS call: (JSON-RPC id, body, headers)."""
    call_id = str(uuid.uuid4())
    body = rpc_body(method, params, id=call_id)
    return call_id, body, signed_headers(body)
