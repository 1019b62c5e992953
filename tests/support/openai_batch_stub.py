"""The OpenAI stub plus a working Batch API (files and batches), for end-to-end `--batch` runs.

A created batch is processed at once by sending each line to the stub's own chat endpoint, so
its answers are exactly what the synchronous path would get; `fail_every` makes every k-th
result an error line, to show failed results are resubmitted and never lost. `scramble` writes
each output file as a provider may: in reverse submission order, with one result for a custom_id
never submitted and, after the first result, a second different result for the same custom_id;
`kept` is then the answer a client must keep for each custom_id (the first).
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
    def __init__(
        self, config: StubConfig | None = None, fail_every: int = 0, scramble: bool = False
    ):
        super().__init__(config)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.fail_every = fail_every
        self.scramble = scramble
        self.batch_lines = 0
        self.kept: dict[str, str] = {}  # custom_id -> the content of its first result
        # batch id -> (results sent for an unknown custom_id, duplicate results sent)
        self.scrambled: dict[str, tuple[int, int]] = {}

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
        for result in results:
            message = result["response"]["body"]["choices"][0]["message"]
            self.kept.setdefault(result["custom_id"], message["content"])
        # The provider's request_counts below count requests, not the scrambled lines.
        output_id = self._store(self._scrambled(batch_id, results) if self.scramble else results)
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

    def _scrambled(self, batch_id: str, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Reverse order, an unknown custom_id first, a second answer after the first one."""
        lines = [_with(results[0], uuid.uuid4().hex, UNKNOWN_TEXT)] if results else []
        for result in reversed(results):
            lines.append(result)
            if len(lines) == 2:
                lines.append(_with(result, result["custom_id"], DUPLICATE_TEXT))
        self.scrambled[batch_id] = (1, 1) if results else (0, 0)
        return lines

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


# What the scrambled lines say: a client that keeps either has matched results wrongly.
UNKNOWN_TEXT = "An answer for a request nobody made, about a lighthouse with no keeper."
DUPLICATE_TEXT = "A second answer for a request already answered; the first one counts."


def _with(result: dict[str, Any], custom_id: str, content: str) -> dict[str, Any]:
    """A copy of a result line for `custom_id`, answering `content`."""
    line = json.loads(json.dumps(result))
    line["id"] = f"batch_req_{uuid.uuid4().hex[:8]}"
    line["custom_id"] = custom_id
    line["response"]["body"]["choices"][0]["message"]["content"] = content
    return line
