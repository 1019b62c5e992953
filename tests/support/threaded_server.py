"""The one way the test servers run: an aiohttp app on 127.0.0.1, served from a background
thread with its own event loop, so a test can drive it from a subprocess or from its own loop."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class ThreadedServer:
    """Subclasses build their routes in `app()`; `serve()` starts them, `stop()` ends them."""

    port = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    def serve(self, port: int = 0) -> None:
        """Start serving (port 0: any free port; `self.port` says which) and wait until ready."""
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            runner = web.AppRunner(self.app(), access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", port)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start within 10 s")

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
