"""A small stand-in for the Hugging Face Hub's HTTP API on 127.0.0.1, for publish tests.

It implements the endpoints huggingface_hub's HfApi calls to create a dataset repo and commit
files to it (read from hf_api.py / _commit_api.py of huggingface_hub 2.4):

    POST /api/repos/create                                  create_repo (409 if it exists)
    GET  /api/datasets/{owner}/{name}[/revision/{rev}]      repo_info
    GET  /api/datasets/{owner}/{name}/tree/{rev}[/{path}]   list_repo_tree (?recursive=)
    POST /api/datasets/{owner}/{name}/branch/{branch}       create_branch
    POST /api/datasets/{owner}/{name}/preupload/{rev}       upload mode per file, remote oid
    POST /api/datasets/{owner}/{name}/commit/{rev}          the commit (NDJSON body)
    POST /api/validate-yaml                                 README metadata check

Every file is answered "regular" upload mode, so content travels base64-encoded inside the
commit (the real Hub says "lfs" for parquet and the client then uploads through Xet storage,
which this stub does not emulate). Files are kept as git blobs: the tree lists their git sha1
as `oid`, as the Hub does for regular files. Every request is logged with its headers, so tests
can check the Authorization header, and failures can be injected per endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import web

from tests.support.threaded_server import ThreadedServer


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    commits: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HubStub(ThreadedServer):
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[LoggedRequest] = []
        # endpoint name ("create", "commit", "preupload", "tree", "info") -> (status, message)
        self.failures: dict[str, tuple[int, str]] = {}

    # -- what tests look at ---------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def commits(self, repo_id: str) -> list[dict[str, Any]]:
        repo = self.repos.get(repo_id)
        return repo.commits if repo else []

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        return dict(self.repos[repo_id].branches[revision])

    # -- app --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._log], client_max_size=1024**3)
        base = "/api/datasets/{owner}/{name}"
        app.router.add_post("/api/repos/create", self._create)
        app.router.add_post("/api/validate-yaml", self._validate_yaml)
        app.router.add_get(base, self._info)
        app.router.add_get(base + "/revision/{rev}", self._info)
        app.router.add_get(base + "/tree/{rev}", self._tree)
        app.router.add_get(base + "/tree/{rev}/{path:.*}", self._tree)
        app.router.add_post(base + "/branch/{branch}", self._branch)
        app.router.add_post(base + "/preupload/{rev}", self._preupload)
        app.router.add_post(base + "/commit/{rev}", self._commit)
        return app

    @web.middleware
    async def _log(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            LoggedRequest(request.method, request.path_qs, dict(request.headers), body)
        )
        response: web.StreamResponse = await handler(request)
        return response

    def _fail(self, name: str) -> web.Response | None:
        if name in self.failures:
            status, message = self.failures[name]
            return web.json_response({"error": message}, status=status)
        return None

    def _repo(self, request: web.Request) -> tuple[str, Repo | None]:
        repo_id = f"{request.match_info['owner']}/{request.match_info['name']}"
        return repo_id, self.repos.get(repo_id)

    @staticmethod
    def _not_found(repo_id: str) -> web.Response:
        return web.json_response(
            {"error": f"Repository Not Found for url: datasets/{repo_id}"},
            status=404,
            headers={"X-Error-Code": "RepoNotFound"},
        )

    async def _create(self, request: web.Request) -> web.Response:
        if failure := self._fail("create"):
            return failure
        payload = await request.json()
        repo_id = f"{payload.get('organization')}/{payload['name']}"
        if payload.get("type") != "dataset":
            return web.json_response({"error": "this stub only hosts datasets"}, status=400)
        if repo_id in self.repos:
            return web.json_response(
                {"error": "You already created this dataset repo", "url": self._url(repo_id)},
                status=409,
            )
        self.repos[repo_id] = Repo(private=payload.get("visibility") == "private")
        return web.json_response({"url": self._url(repo_id), "name": repo_id})

    def _url(self, repo_id: str) -> str:
        return f"{self.endpoint}/datasets/{repo_id}"

    async def _validate_yaml(self, request: web.Request) -> web.Response:
        payload = await request.json()
        content: str = payload.get("content", "")
        errors = []
        if content.startswith("---\n"):
            block = content[4:].split("\n---", 1)[0]
            try:
                data = yaml.safe_load(block)
                if not isinstance(data, dict):
                    errors.append({"message": "metadata must be a mapping"})
            except yaml.YAMLError as exc:
                errors.append({"message": f"invalid YAML: {exc}"})
        if errors:
            return web.json_response({"errors": errors, "warnings": []}, status=400)
        return web.json_response({"errors": [], "warnings": []})

    async def _info(self, request: web.Request) -> web.Response:
        if failure := self._fail("info"):
            return failure
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found(repo_id)
        rev = request.match_info.get("rev", "main")
        if rev not in repo.branches:
            return web.json_response(
                {"error": f"Invalid rev id: {rev}"},
                status=404,
                headers={"X-Error-Code": "RevisionNotFound"},
            )
        return web.json_response(
            {"id": repo_id, "sha": self._head(repo, rev), "private": repo.private}
        )

    @staticmethod
    def _head(repo: Repo, rev: str) -> str:
        ours = [c for c in repo.commits if c["revision"] == rev]
        return ours[-1]["oid"] if ours else "0" * 40

    async def _tree(self, request: web.Request) -> web.Response:
        if failure := self._fail("tree"):
            return failure
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found(repo_id)
        rev = request.match_info["rev"]
        if rev not in repo.branches:
            return web.json_response({"error": f"Invalid rev id: {rev}"}, status=404)
        base = request.match_info.get("path", "").strip("/")
        recursive = request.query.get("recursive", "false").lower() == "true"
        entries: list[dict[str, Any]] = []
        folders: set[str] = set()
        for path, content in sorted(repo.branches[rev].items()):
            if base and not path.startswith(base + "/"):
                continue
            parts = (path[len(base) + 1 :] if base else path).split("/")
            for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
                folder = "/".join([*([base] if base else []), *parts[:depth]])
                if folder not in folders:
                    folders.add(folder)
                    entries.append(
                        {"type": "directory", "oid": "0" * 40, "size": 0, "path": folder}
                    )
            if recursive or len(parts) == 1:
                entries.append(
                    {
                        "type": "file",
                        "oid": git_blob_sha1(content),
                        "size": len(content),
                        "path": path,
                    }
                )
        return web.json_response(entries)

    async def _branch(self, request: web.Request) -> web.Response:
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found(repo_id)
        branch = request.match_info["branch"]
        if branch in repo.branches:
            return web.json_response({"error": "Reference already exists"}, status=409)
        repo.branches[branch] = dict(repo.branches["main"])
        return web.json_response({})

    async def _preupload(self, request: web.Request) -> web.Response:
        if failure := self._fail("preupload"):
            return failure
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found(repo_id)
        files = repo.branches.get(request.match_info["rev"], {})
        payload = await request.json()
        answer = []
        for item in payload["files"]:
            existing = files.get(item["path"])
            answer.append(
                {
                    "path": item["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_sha1(existing) if existing is not None else None,
                }
            )
        return web.json_response({"files": answer, "commitOid": self._head(repo, "main")})

    async def _commit(self, request: web.Request) -> web.Response:
        if failure := self._fail("commit"):
            return failure
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found(repo_id)
        rev = request.match_info["rev"]
        if rev not in repo.branches:
            return web.json_response({"error": f"Invalid rev id: {rev}"}, status=404)
        lines = [json.loads(line) for line in (await request.read()).splitlines() if line]
        header = next(line["value"] for line in lines if line["key"] == "header")
        tree = repo.branches[rev]
        added: list[str] = []
        deleted: list[str] = []
        for line in lines:
            value = line["value"]
            if line["key"] == "file":
                tree[value["path"]] = base64.b64decode(value["content"])
                added.append(value["path"])
            elif line["key"] == "deletedFile":
                tree.pop(value["path"], None)
                deleted.append(value["path"])
            elif line["key"] == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                for path in [p for p in tree if p.startswith(folder)]:
                    del tree[path]
                    deleted.append(path)
            elif line["key"] == "lfsFile":
                return web.json_response(
                    {"error": "this stub takes regular files only"}, status=400
                )
        oid = hashlib.sha1(json.dumps([repo_id, len(repo.commits), header]).encode()).hexdigest()
        repo.commits.append(
            {
                "oid": oid,
                "revision": rev,
                "summary": header.get("summary"),
                "added": added,
                "deleted": deleted,
            }
        )
        return web.json_response(
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self._url(repo_id)}/commit/{oid}",
                "pullRequestUrl": None,
            }
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        """Serve in a background thread; returns the endpoint (http://127.0.0.1:PORT)."""
        self.serve()
        return self.endpoint
