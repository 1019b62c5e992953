"""Replays recorded HTTP exchanges from a cassette on 127.0.0.1, in order, and keeps what it was
sent (with auth headers filtered) so tests can check the requests a provider would have seen.

A cassette is JSON: {"interactions": [{"request": {"method", "path"}, "response": {"status",
"headers", "body"}}]}. Request bodies are checked by the tests, not matched here.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

FILTERED_HEADERS = {"authorization", "x-api-key", "api-key", "cookie"}


class CassetteServer:
    def __init__(self, cassette: Path):
        self.interactions: list[dict[str, Any]] = json.loads(cassette.read_text())["interactions"]
        self.received: list[dict[str, Any]] = []
        self.auth_seen: list[bool] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.auth_seen.append(any(h.lower() in FILTERED_HEADERS for h in request.headers))
        self.received.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": {
                    k.lower(): v
                    for k, v in request.headers.items()
                    if k.lower() not in FILTERED_HEADERS
                },
                "json": json.loads(body) if body else None,
            }
        )
        index = len(self.received) - 1
        if index >= len(self.interactions):
            return web.json_response({"error": "cassette exhausted"}, status=599)
        expected = self.interactions[index]["request"]
        if (request.method, request.path) != (expected["method"], expected["path"]):
            return web.json_response(
                {"error": f"unexpected {request.method} {request.path}"}, status=599
            )
        response = self.interactions[index]["response"]
        return web.Response(
            status=response["status"],
            headers=response.get("headers", {}),
            text=json.dumps(response["body"]),
            content_type="application/json",
        )

    def start(self) -> str:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self.handle)
            runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            assert site._server is not None
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
