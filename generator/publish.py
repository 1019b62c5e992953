"""Upload RUN/dataset/ (made by `archetypes build`) to the Hugging Face Hub.

The repository is created if needed; then the local files are compared with the remote tree
(git sha1 for regular files, sha256 for LFS/Xet ones) and only what differs is sent, together
with deletions of stale shards under data/ and jsonl/ (a rebuild with other shard counts must not
leave old shards matching `data/train-*`). When nothing differs, no commit is made.

Parquet shards are LFS files: huggingface_hub uploads their bytes to the Hub's file storage
(Xet, or LFS basic transfer without hf_xet) before the commit names them by sha256. The Hub
recommends fewer than 100 files per commit, so a large corpus goes in several commits of at
most MAX_FILES_PER_COMMIT files, data first and the card last; a run that fails part-way leaves
the commits that landed, and the next run skips their files as unchanged.

The token comes from HF_TOKEN or the user's stored login and goes only into the Authorization
header: it is never printed, logged or written, and is scrubbed from any error message. Nothing
local is changed by a publish.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from generator import __version__
from generator.dataset import DATASET_DIR
from generator.errors import ConfigError, UserError
from generator.judging import JudgeCheck

T = TypeVar("T")

# Folders whose content the build owns: remote files there that the build no longer makes are
# deleted. Anything else in the repository (a user's own files) is left alone.
OWNED_PREFIXES = ("data/", "jsonl/")
DEFAULT_ENDPOINT = "https://huggingface.co"
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"^({_NAME})/({_NAME})$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
# Files added or deleted per commit: the Hub's guidance is under 100 per commit.
MAX_FILES_PER_COMMIT = 50
_URL = re.compile(r"https?://[^\s,;()]+")
_STATUS = re.compile(r"\b([45]\d\d) [A-Z][A-Za-z ]+\)")


@dataclass(frozen=True)
class LocalFile:
    path_in_repo: str
    local_path: Path
    size: int
    sha256: str
    git_sha1: str


@dataclass
class PublishResult:
    repo_url: str
    revision: str
    commit_url: str | None  # the last commit's; None: nothing changed, no commit made
    uploaded: list[LocalFile] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    commit_urls: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """The lines `archetypes publish` prints."""
        lines = list(self.notes)
        if self.commit_url is None:
            lines.append(
                f"{self.repo_url} is up to date ({len(self.unchanged)} files unchanged); "
                "no commit made"
            )
            return lines
        for item in self.uploaded:
            lines.append(f"  uploaded  {item.path_in_repo}  ({item.size:,} bytes)")
        for path in self.deleted:
            lines.append(f"  deleted   {path}")
        if len(self.commit_urls) > 1:
            lines.append(
                f"split into {len(self.commit_urls)} commits of at most {MAX_FILES_PER_COMMIT} "
                "files each (the Hub recommends fewer than 100 files per commit):"
            )
            lines.extend(f"  {url}" for url in self.commit_urls)
        lines.append(
            f"committed {len(self.uploaded)} file(s), deleted {len(self.deleted)}, "
            f"{len(self.unchanged)} unchanged: {self.commit_url}"
        )
        return lines


# ---------------------------------------------------------------------------------------------
# Local checks (no network)


def check_repo_id(repo_id: str) -> None:
    """OWNER/NAME as the Hub allows them: letters, digits, '-', '_', '.', at most 96 each, not
    starting or ending with '-' or '.', no '--' or '..'."""
    match = _REPO_ID.match(repo_id)
    if not match or any(bad in repo_id for bad in ("--", "..")):
        raise UserError(
            f"--repo-id {repo_id!r}: expected OWNER/NAME, e.g. my-org/archetype-corpus "
            "(letters, digits, '-', '_' and '.'; no leading or trailing '-' or '.')"
        )


def check_revision(revision: str) -> None:
    if not _REVISION.match(revision) or ".." in revision or revision.endswith((".lock", "/")):
        raise UserError(f"--revision {revision!r}: not a valid branch name")


def dataset_dir(run_dir: Path) -> Path:
    return Path(run_dir) / DATASET_DIR


def local_files(run_dir: Path) -> list[LocalFile]:
    """Every file of the built dataset, sorted by path. Raises UserError if there is none."""
    root = dataset_dir(run_dir)
    hint = f"run `archetypes build {run_dir}` first"
    if not Path(run_dir).is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    if not (root / "README.md").is_file() or not any((root / "data").glob("*.parquet")):
        raise UserError(f"{root}: no dataset built yet; {hint}")
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in relative.split("/")):
            continue
        files.append(_hash_file(relative, path))
    return files


def _hash_file(relative: str, path: Path) -> LocalFile:
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    git = hashlib.sha1(b"blob %d\0" % size)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha256.update(chunk)
            git.update(chunk)
    return LocalFile(relative, path, size, sha256.hexdigest(), git.hexdigest())


def check_judged(run_dir: Path, allow_unjudged: bool) -> list[str]:
    """Refuse a corpus that no enforcing judge checked (generator/judging.py), unless allowed;
    the notes to print when it is allowed."""
    judging = JudgeCheck.of_run(Path(run_dir))
    if judging.enforced:
        return []
    if not allow_unjudged:
        raise UserError(
            f"{run_dir}: not published, no enforcing judge checked this corpus "
            f"({judging.why_not()}); judge it with `archetypes check {run_dir} --judge-model "
            "MODEL --apply` and build again, or pass --allow-unjudged to publish it as it is "
            "(its dataset card says it was not judged)"
        )
    return [
        f"note: publishing a corpus no enforcing judge checked ({judging.why_not()}), as "
        "--allow-unjudged asks; its dataset card says so"
    ]


def dry_run(
    run_dir: Path, repo_id: str, revision: str | None = None, *, allow_unjudged: bool = False
) -> list[str]:
    """What a publish would upload (path, size) and the card, touching no network. Refuses a
    corpus no enforcing judge checked, as `publish` does, unless `allow_unjudged`."""
    check_repo_id(repo_id)
    if revision:
        check_revision(revision)
    files = local_files(run_dir)
    notes = check_judged(run_dir, allow_unjudged)
    total = sum(f.size for f in files)
    lines = [
        *notes,
        f"dry run: would upload {len(files)} file(s), {total:,} bytes, to the dataset "
        f"{repo_id} (revision {revision or 'main'}) in one commit, skipping files the Hub "
        "already has and deleting stale files under data/ and jsonl/:",
    ]
    width = max(len(f.path_in_repo) for f in files)
    lines.extend(f"  {f.path_in_repo:<{width}}  {f.size:>14,} bytes" for f in files)
    lines.append("")
    lines.append("----- README.md (the dataset card) -----")
    card = dataset_dir(run_dir) / "README.md"
    lines.extend(card.read_text(encoding="utf-8").rstrip("\n").split("\n"))
    return lines


def resolve_token() -> str:
    """HF_TOKEN, else the stored login (`hf auth login`)."""
    from huggingface_hub import get_token

    token = os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise ConfigError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    return token


def resolve_endpoint() -> str:
    """HF_ENDPOINT read now, not when huggingface_hub was imported."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


# ---------------------------------------------------------------------------------------------
# Talking to the Hub


class _Hub:
    """HfApi calls with the Hub's errors turned into one clean line each."""

    def __init__(self, endpoint: str, token: str):
        from huggingface_hub import HfApi

        self.endpoint = endpoint
        self.token = token
        self.api = HfApi(endpoint=endpoint, token=token)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except Exception as exc:
            error = self._translate(what, exc)
            if error is None:
                raise
            raise error from None

    def ensure_repo(self, repo_id: str, private: bool) -> str:
        """Create the dataset repository unless it exists; its URL.

        Done by hand rather than with create_repo(exist_ok=True): that path builds its answer
        from the endpoint huggingface_hub read at import time, which breaks for an HF_ENDPOINT
        set later. A token that may not create repositories in the namespace (403) may still
        write to an existing one, so a refusal is only final if the repository is not there.
        """
        from huggingface_hub.errors import HfHubHTTPError

        what = f"create the dataset repository {repo_id}"
        try:
            self.api.create_repo(
                repo_id, repo_type="dataset", private=True if private else None, exist_ok=False
            )
        except HfHubHTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status in (402, 403):
                try:
                    self.api.repo_info(repo_id, repo_type="dataset")
                except Exception:
                    raise self._translate(what, exc) or exc from None
            elif status != 409:  # 409: it exists already
                raise self._translate(what, exc) or exc from None
        except Exception as exc:
            raise self._translate(what, exc) or exc from None
        return f"{self.endpoint}/datasets/{repo_id}"

    def upload(self, repo_id: str, branch: str, additions: list[Any]) -> None:
        """Send the LFS files' bytes to the Hub's file storage (Xet, or LFS basic transfer)
        before the commit that names them; a failure becomes one line naming what to check."""
        try:
            self.api.preupload_lfs_files(repo_id, additions, repo_type="dataset", revision=branch)
        except Exception as exc:
            if _failed_url(exc).find("/preupload/") >= 0:  # the Hub itself, not its storage
                raise self._translate(f"prepare the upload to {repo_id}", exc) or exc from None
            raise self._storage_error(repo_id, additions, exc) from None

    def _storage_error(self, repo_id: str, additions: list[Any], exc: Exception) -> UserError:
        url = _failed_url(exc)
        host = urllib.parse.urlsplit(url).netloc or "the Hub's file storage"
        where = f"the storage at {host}" if url else "the Hub's file storage"
        status = _failed_status(exc)
        detail = self._clean(_first_line(_innermost(exc)))
        # the files bound for storage; the regular ones travel inside the commit
        lfs = [a for a in additions if getattr(a, "_upload_mode", None) == "lfs"] or additions
        files = f"{len(lfs)} file(s), e.g. {lfs[0].path_in_repo},"
        if "xet-write-token" in url:
            what = f"the Hub refused a storage write token ({status or 'no answer'})"
        elif status in (401, 403):
            what = f"{where} refused the upload ({status})"
        else:
            what = f"the upload to {where} failed"
        return UserError(
            f"could not upload {files} for {repo_id}: {what}: {detail}; check network access "
            f"to {host} and that the token has write access to {repo_id} (a fine-grained token "
            "needs the repository's write scope)"
        )

    def _clean(self, text: str) -> str:
        text = " ".join(str(text).split())
        return text.replace(self.token, "[token]") if self.token else text

    def _translate(self, what: str, exc: Exception) -> UserError | None:
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

        if isinstance(exc, OfflineModeIsEnabled):
            return ConfigError(
                "HF_HUB_OFFLINE is set, so nothing can be published; unset it and try again"
            )
        if isinstance(exc, HfHubHTTPError):
            response = getattr(exc, "response", None)
            status = getattr(response, "status_code", None)
            message = self._clean(exc.server_message or _first_line(exc))
            if status == 401:
                return ConfigError(
                    f"the Hub rejected the token while trying to {what} (401: {message}); "
                    "set HF_TOKEN to a valid token with write access, or run `hf auth login`"
                )
            if status is not None and 400 <= status < 500:
                return UserError(f"the Hub refused to {what} ({status}): {message}")
            return UserError(
                f"the Hub failed to {what} ({status}): {message}; nothing was changed "
                "there, try again later"
            )
        if _is_transport_error(exc):
            url = self._request_url(exc)
            return UserError(
                f"cannot reach the Hub at {url} to {what}: {self._clean(_reason(exc))}; "
                "check your network connection (or HF_ENDPOINT)"
            )
        if isinstance(exc, ValueError) and "README.md" in str(exc):
            return UserError(
                f"the Hub rejected the dataset card: {self._clean(str(exc))}; "
                "rebuild with `archetypes build`"
            )
        return None

    def _request_url(self, exc: Exception) -> str:
        """`POST http://host/api/...` of the failed request, without its query string."""
        try:
            request = exc.request  # type: ignore[attr-defined]
            parts = urllib.parse.urlsplit(str(request.url))
            return f"{request.method} {parts.scheme}://{parts.netloc}{parts.path}"
        except Exception:  # the client raised before building a request
            return self.endpoint


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _innermost(exc: Exception) -> Exception:
    """The root cause: huggingface_hub wraps an LFS upload's HTTP error in a RuntimeError."""
    last = _chain(exc)[-1]
    return last if isinstance(last, Exception) else exc


def _failed_url(exc: BaseException) -> str:
    """The URL a failed request went to: from the HTTP error's request, else from hf_xet's
    message (it names the URL: `domain: http://...` or `url (http://...)`)."""
    for link in _chain(exc):
        request = getattr(getattr(link, "response", None), "request", None)
        if request is not None:
            return str(request.url)
        if match := _URL.search(str(link)):
            return match.group(0)
    return ""


def _failed_status(exc: BaseException) -> int | None:
    for link in _chain(exc):
        status = getattr(getattr(link, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
        if match := _STATUS.search(str(link)):
            return int(match.group(1))
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_transport_error(exc: BaseException) -> bool:
    """Connection refused, DNS failure, timeout... from whichever HTTP client huggingface_hub
    uses (httpx2 in 2.x, httpx or requests before)."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests", "ConnectionError"),
        ("requests", "Timeout"),
    ):
        try:
            kinds.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            continue
    return isinstance(exc, tuple(kinds))


def _reason(exc: BaseException) -> str:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, OSError) and current.errno == errno.ECONNREFUSED:
            return "connection refused"
        if "Connection refused" in str(current):
            return "connection refused"
        current = current.__cause__ or current.__context__
    return _first_line(exc) if isinstance(exc, Exception) else type(exc).__name__


def _remote_files(hub: _Hub, repo_id: str, revision: str) -> dict[str, Any]:
    from huggingface_hub.hf_api import RepoFile

    entries = hub.call(
        "list the repository's files",
        lambda: list(
            hub.api.list_repo_tree(repo_id, repo_type="dataset", revision=revision, recursive=True)
        ),
    )
    return {e.path: e for e in entries if isinstance(e, RepoFile)}


def _same(local: LocalFile, remote: Any) -> bool:
    lfs = getattr(remote, "lfs", None)
    if lfs is not None:
        return bool(lfs.sha256 == local.sha256)
    return bool(remote.blob_id == local.git_sha1)


def publish(
    run_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    allow_unjudged: bool = False,
) -> PublishResult:
    """Create the dataset repository if needed and commit what changed (in commits of at
    most MAX_FILES_PER_COMMIT files). Refuses, before any network call, a corpus no enforcing
    judge checked unless `allow_unjudged`."""
    check_repo_id(repo_id)
    if revision:
        check_revision(revision)
    files = local_files(run_dir)
    notes = check_judged(run_dir, allow_unjudged)
    token = token or resolve_token()
    hub = _Hub(endpoint or resolve_endpoint(), token)
    branch = revision or "main"

    repo_url = hub.ensure_repo(repo_id, private)
    if private:
        info = hub.call(
            f"read the settings of {repo_id}",
            lambda: hub.api.repo_info(repo_id, repo_type="dataset"),
        )
        if info.private is False:
            notes.append(
                f"note: {repo_id} already exists and is public; --private does not change an "
                "existing repository (change its visibility in the repository settings)"
            )
    if branch != "main":
        hub.call(
            f"create the branch {branch}",
            lambda: hub.api.create_branch(
                repo_id, branch=branch, repo_type="dataset", exist_ok=True
            ),
        )

    remote = _remote_files(hub, repo_id, branch)
    local_paths = {f.path_in_repo for f in files}
    changed = [
        f for f in files if f.path_in_repo not in remote or not _same(f, remote[f.path_in_repo])
    ]
    unchanged = [f.path_in_repo for f in files if f not in changed]
    stale = sorted(
        path for path in remote if path.startswith(OWNED_PREFIXES) and path not in local_paths
    )
    result = PublishResult(
        repo_url=str(repo_url),
        revision=branch,
        commit_url=None,
        uploaded=changed,
        deleted=stale,
        unchanged=unchanged,
        notes=notes,
    )
    if not changed and not stale:
        return result

    batches = _batches(changed, stale)
    summary = message or (
        f"Upload dataset from archetype-corpus {__version__} "
        f"({len(changed)} file(s) changed, {len(stale)} removed)"
    )
    for number, (adds, deletes) in enumerate(batches, start=1):
        title = summary if len(batches) == 1 else f"{summary} [{number}/{len(batches)}]"
        try:
            url = _commit(hub, repo_id, branch, adds, deletes, title)
        except UserError as error:
            if number == 1:
                raise
            raise type(error)(
                f"{error}; {number - 1} of {len(batches)} commits landed, run the same command "
                "again to send the rest (files already on the Hub are skipped)"
            ) from None
        result.commit_urls.append(url)
        result.commit_url = url
    return result


def _batches(changed: list[LocalFile], stale: list[str]) -> list[tuple[list[LocalFile], list[str]]]:
    """Commits of at most MAX_FILES_PER_COMMIT operations: data files first, then the files at
    the top (the card), deletions last, so the card describes the data only once it is there."""
    ordered = sorted(changed, key=lambda f: ("/" not in f.path_in_repo, f.path_in_repo))
    operations: list[LocalFile | str] = [*ordered, *stale]
    size = MAX_FILES_PER_COMMIT
    batches = []
    for start in range(0, len(operations), size):
        part = operations[start : start + size]
        batches.append(
            (
                [op for op in part if isinstance(op, LocalFile)],
                [op for op in part if isinstance(op, str)],
            )
        )
    return batches


def _commit(
    hub: _Hub, repo_id: str, branch: str, adds: list[LocalFile], deletes: list[str], title: str
) -> str:
    """Upload one batch's LFS files to storage, then commit it; the commit's URL."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    additions = [
        CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local_path))
        for f in adds
    ]
    if additions:
        hub.upload(repo_id, branch, additions)
    operations: list[Any] = [
        *additions,
        *(CommitOperationDelete(path_in_repo=path) for path in deletes),
    ]
    commit = hub.call(
        f"commit to {repo_id}",
        lambda: hub.api.create_commit(
            repo_id,
            operations,
            commit_message=title,
            repo_type="dataset",
            revision=branch,
        ),
    )
    return str(commit.commit_url)
