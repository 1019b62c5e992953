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

Large and binary files go to separate storage, as on the real Hub. Preupload answers "lfs" for
a path that the repository's .gitattributes (or, when it has none, the default .gitattributes
the Hub writes into a new dataset repository) marks `filter=lfs`, for a file over 10 MiB, and for
a sample with a NUL byte; "regular" otherwise. An LFS file's bytes reach storage by one of the
two routes huggingface_hub 2.4 takes, and the commit then names it by sha256 in an `lfsFile` line:

  Xet (the default whenever hf_xet is installed, i.e. for every user on x86_64 or arm64):
    GET  /api/datasets/{owner}/{name}/xet-write-token/{rev} short-lived token + CAS URL (JSON
                                                            body for hf_xet, headers for the
                                                            Python side)
    GET  /cas/v1/chunks/{prefix}/{hash}                     global dedup: always 404 (unknown)
    POST /cas/v1/xorbs/{prefix}/{hash}                      a xorb: chunks, decoded and kept
    POST /cas/v1/shards                                     file records: each file is rebuilt
                                                            from the xorbs and its sha256 checked
    POST /cas/v1/telemetry                                  accepted, ignored
  (the newer /v1/xorb-grants and /v2/shards routes are not served; hf_xet falls back to the two
  above when they answer 404, as it does against any CAS without them)

  LFS basic transfer (HF_HUB_DISABLE_XET=1, or no hf_xet wheel for the platform):
    POST /datasets/{owner}/{name}.git/info/lfs/objects/batch  upload/verify actions per object
    PUT  /lfs-storage/{sha256}                              the bytes (sha256 and size checked)
    POST /datasets/{owner}/{name}.git/info/lfs/objects/verify

A commit's `lfsFile` line is refused unless storage holds that sha256 with that size. The tree
lists an LFS file as the Hub does: `oid` is the git sha1 of its pointer file, `size` the real
size, `lfs: {oid: sha256, size, pointerSize}`, plus `xetHash` when it came through Xet. Regular
files are listed by their git sha1. Every request is logged with its headers, so tests can check
which token went where, and failures can be injected per endpoint (`failures`).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import web

from tests.support.threaded_server import ThreadedServer
from tests.support.xet_format import XetFormatError, rebuild, shard_files, xorb_chunks

# The LFS patterns of the .gitattributes the Hub writes into a new dataset repository.
DEFAULT_LFS_PATTERNS = [
    "*.7z",
    "*.arrow",
    "*.bin",
    "*.bz2",
    "*.ckpt",
    "*.ftz",
    "*.gz",
    "*.h5",
    "*.joblib",
    "*.lfs.*",
    "*.lz4",
    "*.mds",
    "*.mlmodel",
    "*.model",
    "*.msgpack",
    "*.npy",
    "*.npz",
    "*.onnx",
    "*.ot",
    "*.parquet",
    "*.pb",
    "*.pickle",
    "*.pkl",
    "*.pt",
    "*.pth",
    "*.rar",
    "*.safetensors",
    "saved_model/**/*",
    "*.tar.*",
    "*.tar",
    "*.tflite",
    "*.tgz",
    "*.wasm",
    "*.xz",
    "*.zip",
    "*.zst",
    "*tfevents*",
    "*.pcm",
    "*.sam",
    "*.raw",
    "*.aac",
    "*.flac",
    "*.mp3",
    "*.ogg",
    "*.wav",
    "*.bmp",
    "*.gif",
    "*.png",
    "*.tiff",
    "*.jpg",
    "*.jpeg",
    "*.webp",
    "*.mp4",
    "*.webm",
]
LFS_SIZE_LIMIT = 10 * 1024 * 1024
XET_TOKEN = "xet-write-token-for-tests"


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The pointer file git stores in place of an LFS file."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def lfs_patterns(gitattributes: str) -> list[str]:
    return [
        line.split()[0]
        for line in gitattributes.splitlines()
        if line.strip() and not line.startswith("#") and "filter=lfs" in line.split()[1:]
    ]


def matches(path: str, pattern: str) -> bool:
    """gitattributes matching, as far as the Hub's patterns need: no slash, the file name."""
    if "/" not in pattern:
        return fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern)
    return fnmatch.fnmatch(path, pattern.replace("**/", "*"))


@dataclass
class Repo:
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    commits: list[dict[str, Any]] = field(default_factory=list)
    # branch -> path -> xet hash (None: uploaded by LFS basic transfer) for files stored as LFS
    lfs: dict[str, dict[str, str | None]] = field(default_factory=lambda: {"main": {}})


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
        # endpoint name -> (status, message): "create", "commit", "preupload", "tree", "info",
        # "xet-token", "xorb", "shard", "lfs-batch", "lfs-upload"
        self.failures: dict[str, tuple[int, str]] = {}
        # fail the commit route from this commit on (0-based count of commits made), for runs
        # that break part-way through a multi-commit publish
        self.fail_commits_from: int | None = None
        # where the token route sends hf_xet (None: this server's /cas)
        self.cas_url: str | None = None
        # LFS storage: sha256 -> bytes, whichever route they came by
        self.storage: dict[str, bytes] = {}
        self.xet_hashes: dict[str, str] = {}  # sha256 -> xet file hash
        self.xorbs: dict[str, list[bytes]] = {}  # xorb hash -> its chunks, uncompressed

    # -- what tests look at ---------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def commits(self, repo_id: str) -> list[dict[str, Any]]:
        repo = self.repos.get(repo_id)
        return repo.commits if repo else []

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        return dict(self.repos[repo_id].branches[revision])

    def lfs_files(self, repo_id: str, revision: str = "main") -> dict[str, str | None]:
        """Paths stored as LFS on that branch -> xet hash (None if sent by LFS basic transfer)."""
        return dict(self.repos[repo_id].lfs[revision])

    def paths(self, method: str = "") -> list[str]:
        """Logged request paths without query strings, optionally only one method's."""
        return [r.path.split("?")[0] for r in self.requests if not method or r.method == method]

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
        app.router.add_get(base + "/xet-write-token/{rev:.*}", self._xet_token)
        app.router.add_get("/cas/v1/chunks/{prefix}/{hash}", self._dedup)
        app.router.add_post("/cas/v1/xorbs/{prefix}/{hash}", self._xorb)
        app.router.add_post("/cas/v1/shards", self._shard)
        app.router.add_post("/cas/v1/telemetry", self._telemetry)
        app.router.add_post("/v1/telemetry", self._telemetry)  # hf_xet also posts it here
        lfs = "/datasets/{owner}/{name}.git/info/lfs/objects"
        app.router.add_post(lfs + "/batch", self._lfs_batch)
        app.router.add_post(lfs + "/verify", self._lfs_verify)
        app.router.add_put("/lfs-storage/{oid}", self._lfs_upload)
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
                entries.append(self._tree_entry(repo, rev, path, content))
        return web.json_response(entries)

    @staticmethod
    def _tree_entry(repo: Repo, rev: str, path: str, content: bytes) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "size": len(content), "path": path}
        if path not in repo.lfs[rev]:
            return {**entry, "oid": git_blob_sha1(content)}
        sha256 = hashlib.sha256(content).hexdigest()
        pointer = lfs_pointer(sha256, len(content))
        entry["oid"] = git_blob_sha1(pointer)
        entry["lfs"] = {"oid": sha256, "size": len(content), "pointerSize": len(pointer)}
        if xet_hash := repo.lfs[rev][path]:
            entry["xetHash"] = xet_hash
        return entry

    async def _branch(self, request: web.Request) -> web.Response:
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found(repo_id)
        branch = request.match_info["branch"]
        if branch in repo.branches:
            return web.json_response({"error": "Reference already exists"}, status=409)
        repo.branches[branch] = dict(repo.branches["main"])
        repo.lfs[branch] = dict(repo.lfs["main"])
        return web.json_response({})

    async def _preupload(self, request: web.Request) -> web.Response:
        if failure := self._fail("preupload"):
            return failure
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found(repo_id)
        rev = request.match_info["rev"]
        files = repo.branches.get(rev, {})
        stored_as_lfs = repo.lfs.get(rev, {})
        payload = await request.json()
        patterns = (
            lfs_patterns(files[".gitattributes"].decode())
            if ".gitattributes" in files
            else (DEFAULT_LFS_PATTERNS)
        )
        answer = []
        for item in payload["files"]:
            existing = files.get(item["path"])
            oid = None
            if existing is not None:
                lfs = item["path"] in stored_as_lfs
                oid = hashlib.sha256(existing).hexdigest() if lfs else git_blob_sha1(existing)
            answer.append(
                {
                    "path": item["path"],
                    "uploadMode": self.upload_mode(item, patterns),
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        return web.json_response({"files": answer, "commitOid": self._head(repo, "main")})

    @staticmethod
    def upload_mode(item: dict[str, Any], patterns: list[str]) -> str:
        if any(matches(item["path"], pattern) for pattern in patterns):
            return "lfs"
        if item["size"] > LFS_SIZE_LIMIT or b"\0" in base64.b64decode(item["sample"]):
            return "lfs"
        return "regular"

    async def _commit(self, request: web.Request) -> web.Response:
        if failure := self._fail("commit"):
            return failure
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found(repo_id)
        if self.fail_commits_from is not None and len(repo.commits) >= self.fail_commits_from:
            return web.json_response({"error": "Internal Error - We're working hard..."}, 400)
        rev = request.match_info["rev"]
        if rev not in repo.branches:
            return web.json_response({"error": f"Invalid rev id: {rev}"}, status=404)
        lines = [json.loads(line) for line in (await request.read()).splitlines() if line]
        header = next(line["value"] for line in lines if line["key"] == "header")
        if missing := self._missing_lfs_objects(lines):
            return web.json_response(
                {
                    "error": "Your push was rejected because an LFS pointer pointed to a file "
                    f"that does not exist. For instance: {missing[0]}"
                },
                status=422,
            )
        tree = repo.branches[rev]
        stored_as_lfs = repo.lfs[rev]
        added: list[str] = []
        lfs_added: list[dict[str, Any]] = []
        deleted: list[str] = []
        for line in lines:
            value = line["value"]
            if line["key"] == "file":
                tree[value["path"]] = base64.b64decode(value["content"])
                stored_as_lfs.pop(value["path"], None)
                added.append(value["path"])
            elif line["key"] == "lfsFile":
                tree[value["path"]] = self.storage[value["oid"]]
                stored_as_lfs[value["path"]] = self.xet_hashes.get(value["oid"])
                added.append(value["path"])
                lfs_added.append(value)
            elif line["key"] == "deletedFile":
                tree.pop(value["path"], None)
                stored_as_lfs.pop(value["path"], None)
                deleted.append(value["path"])
            elif line["key"] == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                for path in [p for p in tree if p.startswith(folder)]:
                    del tree[path]
                    stored_as_lfs.pop(path, None)
                    deleted.append(path)
        oid = hashlib.sha1(json.dumps([repo_id, len(repo.commits), header]).encode()).hexdigest()
        repo.commits.append(
            {
                "oid": oid,
                "revision": rev,
                "summary": header.get("summary"),
                "added": added,
                "lfs": lfs_added,
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

    def _missing_lfs_objects(self, lines: list[dict[str, Any]]) -> list[str]:
        """`lfsFile` paths whose sha256 and size storage does not hold."""
        missing = []
        for line in lines:
            value = line["value"]
            if line["key"] == "lfsFile":
                stored = self.storage.get(value["oid"])
                if stored is None or len(stored) != value.get("size", len(stored)):
                    missing.append(value["path"])
        return missing

    # -- Xet storage ------------------------------------------------------------------------

    async def _xet_token(self, request: web.Request) -> web.Response:
        if failure := self._fail("xet-token"):
            return failure
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found(repo_id)
        cas = self.cas_url or f"{self.endpoint}/cas"
        expires = int(time.time()) + 3600
        return web.json_response(
            {"casUrl": cas, "accessToken": XET_TOKEN, "exp": expires},
            headers={
                "X-Xet-Cas-Url": cas,
                "X-Xet-Access-Token": XET_TOKEN,
                "X-Xet-Token-Expiration": str(expires),
            },
        )

    def _xet_unauthorized(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {XET_TOKEN}":
            return web.json_response({"error": "invalid or expired Xet token"}, status=401)
        return None

    async def _dedup(self, request: web.Request) -> web.Response:
        return self._xet_unauthorized(request) or web.Response(status=404)

    async def _xorb(self, request: web.Request) -> web.Response:
        if refused := self._xet_unauthorized(request) or self._fail("xorb"):
            return refused
        try:
            chunks = xorb_chunks(await request.read())
        except XetFormatError as exc:
            return web.json_response({"error": f"bad xorb: {exc}"}, status=400)
        self.xorbs[request.match_info["hash"]] = chunks
        return web.json_response({"was_inserted": True})

    async def _shard(self, request: web.Request) -> web.Response:
        if refused := self._xet_unauthorized(request) or self._fail("shard"):
            return refused
        try:
            files = shard_files(await request.read())
            contents = [(info, rebuild(info, self.xorbs)) for info in files]
        except XetFormatError as exc:
            return web.json_response({"error": f"bad shard: {exc}"}, status=400)
        for info, content in contents:
            sha256 = hashlib.sha256(content).hexdigest()
            if info.sha256 is not None and info.sha256 != sha256:
                return web.json_response(
                    {"error": f"file {info.xet_hash}: sha256 {sha256}, shard says {info.sha256}"},
                    status=400,
                )
            self.storage[sha256] = content
            self.xet_hashes[sha256] = info.xet_hash
        return web.json_response({"result": 1})

    async def _telemetry(self, request: web.Request) -> web.Response:
        return web.json_response({})

    # -- LFS basic transfer -----------------------------------------------------------------

    async def _lfs_batch(self, request: web.Request) -> web.Response:
        if failure := self._fail("lfs-batch"):
            return failure
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._not_found(repo_id)
        payload = await request.json()
        verify = f"{self.endpoint}/datasets/{repo_id}.git/info/lfs/objects/verify"
        objects = []
        for item in payload["objects"]:
            entry = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in self.storage:  # no actions: already stored
                entry["actions"] = {
                    "upload": {"href": f"{self.endpoint}/lfs-storage/{item['oid']}"},
                    "verify": {"href": verify},
                }
            objects.append(entry)
        return web.json_response(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            content_type="application/vnd.git-lfs+json",
        )

    async def _lfs_upload(self, request: web.Request) -> web.Response:
        if failure := self._fail("lfs-upload"):
            return failure
        content = await request.read()
        oid = request.match_info["oid"]
        if hashlib.sha256(content).hexdigest() != oid:
            return web.json_response({"error": "content does not match its oid"}, status=400)
        self.storage[oid] = content
        return web.Response(status=200)

    async def _lfs_verify(self, request: web.Request) -> web.Response:
        payload = await request.json()
        stored = self.storage.get(payload["oid"])
        if stored is None or len(stored) != payload["size"]:
            return web.json_response({"error": "object not found"}, status=404)
        return web.json_response({})

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        """Serve in a background thread; returns the endpoint (http://127.0.0.1:PORT)."""
        self.serve()
        return self.endpoint
