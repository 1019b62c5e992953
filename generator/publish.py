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

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import __version__
from generator.dataset import DATASET_DIR
from generator.errors import UserError
from generator.hub import Hub, resolve_endpoint, resolve_token
from generator.judging import JudgeCheck

# Folders whose content the build owns: remote files there that the build no longer makes are
# deleted. Anything else in the repository (a user's own files) is left alone.
OWNED_PREFIXES = ("data/", "jsonl/")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"^({_NAME})/({_NAME})$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
# Files added or deleted per commit: the Hub's guidance is under 100 per commit.
MAX_FILES_PER_COMMIT = 50


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
    hub = Hub(endpoint or resolve_endpoint(), token or resolve_token())
    branch = revision or "main"
    repo_url = _prepare_repo(hub, repo_id, branch, private, notes)
    remote = hub.remote_files(repo_id, branch)
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
    if changed or stale:
        summary = message or (
            f"Upload dataset from archetype-corpus {__version__} "
            f"({len(changed)} file(s) changed, {len(stale)} removed)"
        )
        result.commit_urls = _commit_all(hub, repo_id, branch, _batches(changed, stale), summary)
        result.commit_url = result.commit_urls[-1]
    return result


def _prepare_repo(hub: Hub, repo_id: str, branch: str, private: bool, notes: list[str]) -> str:
    """Create the repository (and the branch) unless they exist; its URL. A note joins `notes`
    when --private asks for a repository that exists and is public."""
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
    return repo_url


def _commit_all(
    hub: Hub,
    repo_id: str,
    branch: str,
    batches: list[tuple[list[LocalFile], list[str]]],
    summary: str,
) -> list[str]:
    """Commit each batch in turn; the commits' URLs. A failure after the first commit says how
    many landed, so the user knows a rerun sends only the rest."""
    urls: list[str] = []
    for number, (adds, deletes) in enumerate(batches, start=1):
        title = summary if len(batches) == 1 else f"{summary} [{number}/{len(batches)}]"
        try:
            urls.append(_commit(hub, repo_id, branch, adds, deletes, title))
        except UserError as error:
            if number == 1:
                raise
            raise type(error)(
                f"{error}; {number - 1} of {len(batches)} commits landed, run the same command "
                "again to send the rest (files already on the Hub are skipped)"
            ) from None
    return urls


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
    hub: Hub, repo_id: str, branch: str, adds: list[LocalFile], deletes: list[str], title: str
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
