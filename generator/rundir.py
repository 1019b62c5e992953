"""The run directory: the only module that writes files under a run's folder.

Layout: manifest.json (replaced atomically), records.jsonl, rejects.jsonl, cache.jsonl and
batches.jsonl (append-only, one JSON object per line, flushed as each result arrives), and
.lock (held with flock while a process works here; the kernel drops it if the process dies,
even by SIGKILL).
A line cut short by a kill is trimmed the next time the run is opened, so no file stays corrupt.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from generator.errors import OutputError, RunLockedError
from generator.records import Record, Reject, iter_jsonl_models, iter_records

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
REJECTS = "rejects.jsonl"
CACHE = "cache.jsonl"
BATCHES = "batches.jsonl"  # provider batches submitted from this run (generator/batch.py)
LOCK = ".lock"
# `archetypes calibrate LABELS --out RUN/calibration.json`: how well the run's judge agreed with
# a labelled set; the dataset card quotes it when it was made with the judge that checked the run.
CALIBRATION = "calibration.json"


def _disk_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        why = "the disk is full; free some space and rerun the same command to continue"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied (read-only?); choose a writable --out"
    elif exc.errno == errno.EFBIG:
        why = (
            "a file-size limit was reached (ulimit -f, or the filesystem's maximum file size); "
            "raise the limit or choose an --out on another filesystem, then rerun to continue"
        )
    else:
        why = exc.strerror or str(exc)
    return OutputError(f"{path}: cannot write: {why} (everything finished so far is kept)")


class RunDir:
    """An opened, locked run directory. Use as a context manager."""

    def __init__(self, path: Path):
        self.path = path
        self._lock_handle: IO[str] | None = None
        self._appenders: dict[str, IO[str]] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> RunDir:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"{self.path}: exists and is not a directory; choose another --out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = (self.path / LOCK).open("a+", encoding="utf-8")
        except OSError as exc:
            raise _disk_error(self.path, exc) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunLockedError(
                f"{self.path} is in use by {holder}; wait for it to finish or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"archetypes pid {os.getpid()}")
        handle.flush()
        self._lock_handle = handle
        try:
            for name in (RECORDS, REJECTS, CACHE, BATCHES, MANIFEST):
                path = self.path / name
                # Refuse up front rather than after paying for calls whose results cannot be kept.
                if path.exists() and not os.access(path, os.W_OK):
                    raise PermissionError(errno.EACCES, "permission denied", str(path))
                if name != MANIFEST:
                    self._repair(path)
        except OSError as exc:
            self.close()
            raise _disk_error(self.path, exc) from None

    def close(self) -> None:
        for handle in self._appenders.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._appenders.clear()
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    # -- reading --------------------------------------------------------------------------

    def read_jsonl(self, name: str) -> Iterator[dict[str, Any]]:
        """Every complete line of a JSONL file (none if it does not exist)."""
        path = self.path / name
        if not path.exists():
            return
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    def read_manifest(self) -> dict[str, Any] | None:
        path = self.path / MANIFEST
        if not path.exists():
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return data

    # -- writing --------------------------------------------------------------------------

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
            raise _disk_error(self.path / name, exc) from None

    def write_jsonl(self, name: str, rows: Iterable[dict[str, Any]]) -> Path:
        """Replace a whole JSONL file (e.g. after `check --apply`) atomically."""
        target = self.path / name
        appender = self._appenders.pop(name, None)
        if appender is not None:
            appender.close()
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise _disk_error(target, exc) from None
        return target

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace manifest.json atomically: readers see the old or the new one, never half."""
        target = self.path / MANIFEST
        temporary = self.path / f".{MANIFEST}.tmp"
        try:
            with temporary.open("w", encoding="utf-8") as handle:
                json.dump(manifest, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise _disk_error(target, exc) from None

    @staticmethod
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


# -- reading a run from outside (no lock: a finished run, or one still growing) -----------------


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


def read_run_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The run's manifest, or None when it is missing or unreadable."""
    path = Path(run_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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
    return iter_records(Path(run_dir) / RECORDS, then=then)


def iter_run_rejects(run_dir: Path, then: str = "run the command again") -> Iterator[Reject]:
    """The run's rejects, read as `generator.records.iter_records` reads records."""
    return iter_jsonl_models(Path(run_dir) / REJECTS, Reject, "reject", then=then)
