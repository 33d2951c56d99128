"""Serving the API with uvicorn (the only module importing it) as a gateway component."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from dashboard_api.app import create_app
from dashboard_api.residents import ResidentDirectory
from gateway.runtime import ConfigurationError, HealthState, Runtime, Stage

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """Leaves signal handling to the gateway's supervisor."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """Runs the API until cancelled, then lets open requests finish and ends live streams."""

    stage = Stage.OUTPUT

    def __init__(
        self, runtime: Runtime, residents: ResidentDirectory | None = None, name: str = "api"
    ) -> None:
        self.name = name
        self._runtime = runtime
        self._residents = residents
        self.port: int | None = None
        self.started = asyncio.Event()

    def _bind(self) -> socket.socket:
        cfg = self._runtime.config.api
        family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this: without it, uvicorn's separate writes of headers and
        # body meet the client's delayed ACK and every response takes ~40 ms longer.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((cfg.host, cfg.port))
        except socket.gaierror as exc:
            sock.close()
            raise ConfigurationError(f"api.host {cfg.host!r} is not an address: {exc}") from exc
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        sock.setblocking(False)
        return sock

    async def run(self) -> None:
        rt = self._runtime
        cfg = rt.config.api
        app = create_app(rt, self._residents)
        sock = self._bind()
        self.port = int(sock.getsockname()[1])
        server = _Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=int(max(1, cfg.shutdown_timeout_s)),
            )
        )

        async def serve() -> None:
            try:
                await server.serve(sockets=[sock])
            except SystemExit as exc:  # uvicorn exits the process when the app cannot start
                raise RuntimeError("the API failed to start (see the log above)") from exc

        task = asyncio.create_task(serve(), name="api-uvicorn")
        try:
            while not server.started:
                if task.done():
                    break
                await asyncio.sleep(0.01)
            if server.started:
                rt.health.set(self.name, HealthState.RUNNING, f"http://{cfg.host}:{self.port}/")
                log.info("cockpit on http://%s:%s/", cfg.host, self.port)
                self.started.set()
            await asyncio.shield(task)
            raise RuntimeError("the API server stopped by itself")
        except asyncio.CancelledError:
            app.state.ctx.hub.close()
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, cfg.shutdown_timeout_s + 2)
            raise
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            sock.close()
            rt.health.set(self.name, HealthState.STOPPED)


def serve_forever(app: FastAPI, *, host: str, port: int) -> None:
    """Serve `app` in the foreground until SIGINT/SIGTERM (the campus view's process)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,  # open event streams would hold the shutdown forever
    )
