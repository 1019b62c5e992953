"""Replays recorded HTTP exchanges from a cassette on 127.0.0.1, in order, and keeps what it was
sent (with auth headers filtered) so tests can check the requests a provider would have seen.

A cassette is JSON: {"interactions": [{"request": {"method", "path"}, "response": {"status",
"headers", "body"}}]}. Request bodies are checked by the tests, not matched here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.threaded_server import ThreadedServer

FILTERED_HEADERS = {"authorization", "x-api-key", "api-key", "cookie"}


class CassetteServer(ThreadedServer):
    def __init__(self, cassette: Path):
        self.interactions: list[dict[str, Any]] = json.loads(cassette.read_text())["interactions"]
        self.received: list[dict[str, Any]] = []
        self.auth_seen: list[bool] = []

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

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def start(self) -> str:
        self.serve()
        return f"http://127.0.0.1:{self.port}"
