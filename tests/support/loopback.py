"""The stand-in peers' common part: an ASGI app served by uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Self

import uvicorn


class LoopbackStub:
    """Subclasses set ``self.app`` (and ``name``); ``with Stub() as stub`` serves it on a free loopback port."""

    name = "stub"
    app: Any
    port: int | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # bound here, so the port cannot be taken between choosing and serving it
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", ws="none", http="h11", loop="asyncio"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.name} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
