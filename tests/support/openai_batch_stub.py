"""The OpenAI stub plus a working Batch API (files and batches), for end-to-end `--batch` runs.

A created batch is processed at once by sending each line to the stub's own chat endpoint, so
its answers are exactly what the synchronous path would get; `fail_every` makes every k-th
result an error line, to show failed results are resubmitted and never lost.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.openai_stub import OpenAIStub, StubConfig


class OpenAIBatchStub(OpenAIStub):
    def __init__(self, config: StubConfig | None = None, fail_every: int = 0):
        super().__init__(config)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.fail_every = fail_every
        self.batch_lines = 0

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{file_id}/content", self.content)
        app.router.add_post("/v1/batches", self.create_batch)
        app.router.add_get("/v1/batches", self.list_batches)
        app.router.add_get("/v1/batches/{batch_id}", self.get_batch)
        app.router.add_post("/v1/batches/{batch_id}/cancel", self.cancel_batch)
        return app

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField), "multipart upload with a file field"
        assert form.get("purpose") == "batch"
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files[file_id] = upload.file.read()
        return web.json_response(
            {
                "id": file_id,
                "object": "file",
                "bytes": len(self.files[file_id]),
                "created_at": int(time.time()),
                "filename": upload.filename,
                "purpose": "batch",
                "status": "processed",
            }
        )

    async def content(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.files[request.match_info["file_id"]], content_type="application/octet-stream"
        )

    async def create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        lines = [
            json.loads(x)
            for x in self.files[body["input_file_id"]].decode().splitlines()
            if x.strip()
        ]
        results, errors = [], []
        async with aiohttp.ClientSession() as session:
            for line in lines:
                assert (
                    line["method"] == "POST"
                    and line["url"] == body["endpoint"] == "/v1/chat/completions"
                )
                self.batch_lines += 1
                if self.fail_every and self.batch_lines % self.fail_every == 0:
                    errors.append(
                        {
                            "id": f"batch_req_{uuid.uuid4().hex[:8]}",
                            "custom_id": line["custom_id"],
                            "response": {
                                "status_code": 500,
                                "request_id": "req_x",
                                "body": {
                                    "error": {
                                        "message": "The server had an error",
                                        "type": "server_error",
                                    }
                                },
                            },
                            "error": None,
                        }
                    )
                    continue
                async with session.post(
                    f"{self.base_url}/chat/completions", json=line["body"]
                ) as reply:
                    results.append(
                        {
                            "id": f"batch_req_{uuid.uuid4().hex[:8]}",
                            "custom_id": line["custom_id"],
                            "response": {
                                "status_code": reply.status,
                                "request_id": "req_y",
                                "body": await reply.json(),
                            },
                            "error": None,
                        }
                    )
        batch_id = f"batch_{uuid.uuid4().hex[:24]}"
        output_id = self._store(results)
        error_id = self._store(errors) if errors else None
        now = int(time.time())
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "completed",
            "output_file_id": output_id,
            "error_file_id": error_id,
            "created_at": now,
            "in_progress_at": now,
            "expires_at": now + 86400,
            "finalizing_at": now,
            "completed_at": now,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {
                "total": len(lines),
                "completed": len(results),
                "failed": len(errors),
            },
            "metadata": body.get("metadata"),
        }
        return web.json_response(self.batches[batch_id])

    def _store(self, rows: list[dict[str, Any]]) -> str:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode()
        return file_id

    async def list_batches(self, request: web.Request) -> web.Response:
        """GET /v1/batches: newest first, a cursor page as documented (limit, after)."""
        newest_first = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
        after = request.query.get("after")
        if after:
            ids = [b["id"] for b in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :]
        limit = int(request.query.get("limit", "20"))
        page = newest_first[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(newest_first) > limit,
            }
        )

    async def get_batch(self, request: web.Request) -> web.Response:
        return web.json_response(self.batches[request.match_info["batch_id"]])

    async def cancel_batch(self, request: web.Request) -> web.Response:
        batch = self.batches[request.match_info["batch_id"]]
        return web.json_response(batch)
