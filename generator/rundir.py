"""The run directory: the only module that reads or writes the files under a run's folder.

Layout: manifest.json (replaced atomically), records.jsonl, rejects.jsonl, cache.jsonl and
batches.jsonl (append-only, one JSON object per line, flushed as each result arrives), .lock
(held with filelock while a process works here; the kernel drops it if the process dies, even
by SIGKILL) and .lock.holder (who holds it, for the refusal message: filelock truncates the lock
file each time it opens it, so the holder cannot be written there).
A line cut short by a kill is trimmed the next time the run is opened for writing; a read-only
view skips such a line instead.

Two doors: `RunDir` (a context manager: locked, repaired, writable) for generate, check, batch
and merge's output; `read_run` (a `RunView`: no lock, no repair, read-only) for build, merge's
shards, report and the CLI's look at a run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from generator.backends.base import Completion
from generator.errors import OutputError, RunLockedError
from generator.records import Record, Reject, iter_jsonl_models, iter_records

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
REJECTS = "rejects.jsonl"
CACHE = "cache.jsonl"
BATCHES = "batches.jsonl"  # provider batches submitted from this run (generator/batch.py)
LOCK = ".lock"
HOLDER = ".lock.holder"  # "archetypes pid N" while a process holds LOCK
# `archetypes calibrate LABELS --out RUN/calibration.json`: how well the run's judge agreed with
# a labelled set; the dataset card quotes it when it was made with the judge that checked the run.
CALIBRATION = "calibration.json"
# Scratch folders of corpus-wide passes (`archetypes dedup`, `merge --executor`): WORK/<pass>/
# holds a datatrove pipeline's stage files, logs and completion markers until its result is in.
WORK = "work"
# `archetypes eval --out DIR` (generator/evaluate.py): cache.jsonl as a run's, and these.
ANSWERS = "answers.jsonl"
EVAL_REPORT = "eval.json"
EVAL_PAGE = "eval.html"


def disk_error(
    path: Path,
    exc: OSError,
    then: str = "rerun the same command to continue",
    kept: str = "everything finished so far is kept",
    writable: str = "choose a writable --out",
) -> OutputError:
    """One line saying why `path` cannot be written and how to fix it: `then` is how to carry
    on once the cause is fixed, `kept` what survives, `writable` the fix for a read-only place.
    The run (generate, check, merge) and the dataset build share it."""
    if exc.errno == errno.ENOSPC:
        why = f"the disk is full; free some space and {then}"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = f"permission denied (read-only?); {writable}"
    elif exc.errno == errno.EFBIG:
        why = (
            "a file-size limit was reached (ulimit -f, or the filesystem's maximum file size); "
            f"raise the limit or choose an --out on another filesystem, then {then}"
        )
    else:
        why = exc.strerror or str(exc)
    return OutputError(f"{path}: cannot write: {why} ({kept})")


# -- typed lines and the manifest ---------------------------------------------------------------


class ManifestArchetype(BaseModel):
    """One archetype of the run, as `archetypes generate` recorded it."""

    model_config = ConfigDict(extra="allow")

    id: str
    version: Any = None
    spec_hash: str | None = None
    source: str | None = None


class ShardRef(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int
    count: int


class Manifest(BaseModel):
    """manifest.json. Keys this version does not know are kept (a newer or older tool wrote
    them), and keys a manifest lacks stay absent when it is written back (`exclude_unset`), so
    a run directory keeps the shape it was written with."""

    model_config = ConfigDict(extra="allow")

    tool: str | None = None
    status: str | None = None
    archetype_ids: list[str] = Field(default_factory=list)
    archetypes: list[ManifestArchetype] = Field(default_factory=list)
    seed: int | None = None
    n: int = 0
    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    base_urls: list[str] = Field(default_factory=list)
    shard: ShardRef | None = None
    samples_per_request: int = 1  # runs from before the option had one idea per call
    brief: str | None = None
    template_versions: dict[str, str] | None = None
    concurrency: int | None = None
    budget_usd: float | None = None
    gates: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, Any] = Field(default_factory=dict)
    usage: dict[str, int] = Field(default_factory=dict)
    cost_usd: float = 0.0
    cost_saved_usd: float = 0.0
    price_known: bool | None = None
    faults: dict[str, int] = Field(default_factory=dict)
    judge_passes: dict[str, Any] | None = None
    shared_idea_answers: dict[str, int] | None = None
    endpoints: list[dict[str, Any]] | None = None
    batch: dict[str, Any] | None = None
    calls_this_session: dict[str, int] | None = None
    merged_from: list[dict[str, Any]] | None = None
    # `build --decontaminate`: the probe files, the rule and the count (generator/decontaminate.py)
    decontamination: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The manifest as written to disk."""
        return self.model_dump(mode="json", exclude_unset=True)


class CacheLine(BaseModel):
    """One line of cache.jsonl: a paid model answer, keyed by task, step, model and prompt.
    Written by the call path (generator/calls.py) and by `batch collect` alike."""

    model_config = ConfigDict(extra="allow")

    key: str
    task_id: str = ""
    step: str = ""
    cost_usd: float = 0.0
    list_cost_usd: float | None = None  # None (older lines): the same as cost_usd
    completion: Completion

    @property
    def list_cost(self) -> float:
        """The answer at the full rates: no prompt cache, no batch discount."""
        return self.cost_usd if self.list_cost_usd is None else self.list_cost_usd


class RejectLine(BaseModel):
    """A lenient reading of one rejects.jsonl line, for statistics over runs of any age (the
    strict shape, which this tool writes, is `generator.records.Reject`)."""

    model_config = ConfigDict(extra="allow")

    task_id: str = ""
    index: int | None = None
    archetype_id: str = "unknown"
    trait_focus: str | None = None
    genre: str | None = None
    step: str = "unknown"
    reason: str = "unknown"
    detail: str = ""
    text: str = ""


class JudgeSetting(BaseModel):
    """The manifest's `gates.judge`: how the judge ran in the run's last session."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    mode: str  # enforce, advisory or off
    model: str | None = None
    note: str = ""


class Calibration(BaseModel):
    """The figures the dataset card quotes from RUN/calibration.json (other keys are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    judge_model: str
    backfire_recall: float | None = None
    kappa: float | None = None


# -- reading ------------------------------------------------------------------------------------


class RunView:
    """A run directory, read only: no lock taken, no file repaired, nothing written. Safe on a
    finished run and on one still growing (a partial last line is skipped)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read_jsonl(self, name: str) -> Iterator[dict[str, Any]]:
        """Every complete line of a JSONL file (none if it does not exist)."""
        path = self.path / name
        if not path.exists():
            return
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip() and line.endswith("\n"):
                    yield json.loads(line)

    def manifest_json(self) -> dict[str, Any] | None:
        """manifest.json as raw JSON, or None when it is missing or unreadable."""
        try:
            data = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def read_manifest(self) -> Manifest | None:
        """The manifest, or None when it is missing, unreadable or not a manifest."""
        data = self.manifest_json()
        try:
            return Manifest.model_validate(data) if data is not None else None
        except ValidationError:
            return None

    def records(self, then: str = "run the command again") -> Iterator[Record]:
        """The run's records (see `generator.records.iter_records`)."""
        return iter_records(self.path / RECORDS, then=then)

    def rejects(self, then: str = "run the command again") -> Iterator[Reject]:
        """The run's rejects, strictly typed."""
        return iter_jsonl_models(self.path / REJECTS, Reject, "reject", then=then)

    def reject_lines(self) -> Iterator[RejectLine | None]:
        """Every complete line of rejects.jsonl, leniently typed; None for a line that is not
        a JSON object (counted as unreadable by statistics, never fatal)."""
        path = self.path / REJECTS
        if not path.exists():
            return
        with path.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n") or not line.strip():
                    continue
                try:
                    yield RejectLine.model_validate_json(line)
                except ValidationError:
                    yield None

    def reject_reasons(self) -> Counter[str]:
        """Rejections by reason; a line that cannot be read counts as `unreadable-line`."""
        return Counter(r.reason if r else "unreadable-line" for r in self.reject_lines())

    def cache_lines(self) -> Iterator[CacheLine]:
        """The run's paid model answers, in the order they arrived."""
        for line in self.read_jsonl(CACHE):
            yield CacheLine.model_validate(line)

    def work_path(self, name: str) -> Path:
        """The scratch folder of the corpus-wide pass `name` (RUN/work/NAME; may not exist)."""
        return self.path / WORK / name

    def holder(self) -> str | None:
        """Who holds the run's lock ("archetypes pid N"), or None when nobody does."""
        if not (self.path / LOCK).exists():
            return None
        probe = FileLock(str(self.path / LOCK), timeout=0)
        try:
            probe.acquire()
        except Timeout:
            return _read_holder(self.path)
        except OSError:
            return None  # a run we cannot lock (read-only media) is not being written either
        probe.release()
        return None


def read_run(path: Path) -> RunView:
    """A read-only view of the run directory at `path` (see RunView)."""
    return RunView(path)


def _read_holder(path: Path) -> str:
    try:
        return (path / HOLDER).read_text(encoding="utf-8").strip() or "another process"
    except OSError:
        return "another process"


# -- writing ------------------------------------------------------------------------------------


class RunDir(RunView):
    """An opened, locked run directory. Use as a context manager."""

    def __init__(self, path: Path):
        super().__init__(path)
        self._lock: FileLock | None = None
        self._appenders: dict[str, IO[str]] = {}

    def __enter__(self) -> RunDir:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Create the folder if needed, take the lock (refused, naming the holder, while another
        process has it), and trim any line a killed process left unfinished."""
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"{self.path}: exists and is not a directory; choose another --out")
        lock = FileLock(str(self.path / LOCK), timeout=0)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except Timeout:
            raise RunLockedError(
                f"{self.path} is in use by {_read_holder(self.path)}; "
                "wait for it to finish or choose another --out"
            ) from None
        except OSError as exc:
            raise disk_error(self.path, exc) from None
        self._lock = lock
        try:
            (self.path / HOLDER).write_text(f"archetypes pid {os.getpid()}", encoding="utf-8")
            for name in (RECORDS, REJECTS, CACHE, BATCHES, MANIFEST):
                path = self.path / name
                # Refuse up front rather than after paying for calls whose results cannot be kept.
                if path.exists() and not os.access(path, os.W_OK):
                    raise PermissionError(errno.EACCES, "permission denied", str(path))
                if name != MANIFEST:
                    _repair(path)
        except OSError as exc:
            self.close()
            raise disk_error(self.path, exc) from None

    def close(self) -> None:
        for handle in self._appenders.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._appenders.clear()
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.path / HOLDER).unlink()
            self._lock.release()
            self._lock = None

    def append(self, name: str, obj: dict[str, Any] | str) -> None:
        """Append one JSON line and flush it to the OS, so a killed process keeps it."""
        line = (obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)) + "\n"
        try:
            handle = self._appenders.get(name)
            if handle is None:
                handle = (self.path / name).open("a", encoding="utf-8")
                self._appenders[name] = handle
            handle.write(line)
            handle.flush()
        except OSError as exc:
            raise disk_error(self.path / name, exc) from None

    def append_record(self, record: Record) -> None:
        self.append(RECORDS, record.model_dump_json())

    def append_reject(self, reject: Reject) -> None:
        self.append(REJECTS, reject.model_dump(mode="json"))

    def append_cache(self, line: CacheLine) -> None:
        self.append(CACHE, line.model_dump(mode="json"))

    def replace_lines(self, name: str, lines: Iterable[str]) -> Path:
        """Replace a whole JSONL file atomically with lines already serialised (one JSON object
        each, no newline), e.g. records a corpus-wide pass kept, byte for byte."""
        target = self.path / name
        appender = self._appenders.pop(name, None)
        if appender is not None:
            appender.close()
        _replace_atomically(target, lambda h: h.writelines(line + "\n" for line in lines))
        return target

    def work_dir(self, name: str) -> Path:
        """The scratch folder of the corpus-wide pass `name`, created: the pass's datatrove
        stages write their files and logs there (see WORK)."""
        path = self.work_path(name)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise disk_error(path, exc) from None
        return path

    def remove_work(self, name: str) -> None:
        """Delete a pass's scratch folder once its result is in the run (and WORK if empty)."""
        shutil.rmtree(self.work_path(name), ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.path / WORK).rmdir()

    def write_jsonl(self, name: str, rows: Iterable[dict[str, Any]]) -> Path:
        """Replace a whole JSONL file (e.g. after `check --apply`) atomically."""
        (self.path / name).parent.mkdir(parents=True, exist_ok=True)
        return self.replace_lines(name, (json.dumps(r, ensure_ascii=False) for r in rows))

    def write_manifest(self, manifest: Manifest) -> None:
        """Replace manifest.json atomically: readers see the old or the new one, never half."""
        body = json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n"
        _replace_atomically(self.path / MANIFEST, lambda h: h.write(body))


def _replace_atomically(target: Path, write: Any) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException as exc:  # a disk error, or the writer gave up: nothing left behind
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(exc, OSError):
            raise disk_error(target, exc) from None
        raise


def _repair(path: Path) -> None:
    """Trim a trailing partial line (a write cut short by a kill or a full disk)."""
    if not path.exists():
        return
    with path.open("rb") as reader:
        if reader.seek(0, os.SEEK_END) == 0:
            return
        reader.seek(-1, os.SEEK_END)
        if reader.read(1) == b"\n":
            return  # the usual case: nothing to trim, so nothing is opened for writing
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        # Walk back to the last newline; everything after it is an unfinished line.
        position = size
        chunk = 65536
        while position > 0:
            start = max(position - chunk, 0)
            handle.seek(start)
            block = handle.read(position - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                handle.truncate(start + cut + 1)
                return
            position = start
        handle.truncate(0)


# -- functions other modules already call (each one line over a RunView) -------------------------


def read_run_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The run's manifest as raw JSON, or None when it is missing or unreadable."""
    return RunView(run_dir).manifest_json()


def judge_setting(manifest: dict[str, Any] | None) -> JudgeSetting | None:
    """The manifest's `gates.judge`, or None when the manifest does not say (no manifest, or
    one not written by `archetypes generate`)."""
    gates = (manifest or {}).get("gates")
    judge = gates.get("judge") if isinstance(gates, dict) else None
    try:
        return JudgeSetting.model_validate(judge) if isinstance(judge, dict) else None
    except ValidationError:
        return None


def read_calibration(run_dir: Path) -> Calibration | None:
    """RUN/calibration.json, or None when there is none or it is not a calibration report."""
    path = Path(run_dir) / CALIBRATION
    try:
        return Calibration.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def iter_run_records(run_dir: Path, then: str = "run the command again") -> Iterator[Record]:
    """The run's records, as `generator.records.iter_records` reads them."""
    return RunView(run_dir).records(then)


def iter_run_rejects(run_dir: Path, then: str = "run the command again") -> Iterator[Reject]:
    """The run's rejects, read as `generator.records.iter_records` reads records."""
    return RunView(run_dir).rejects(then)
