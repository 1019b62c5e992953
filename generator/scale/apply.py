"""Putting a verdicts file into a run, streaming: the records that failed move to rejects.jsonl,
records.jsonl keeps the others in their order, byte for byte (`archetypes check --executor
... --apply`).

One pass over records.jsonl beside the verdicts (one line each, in the same order): a failing
record's reject is appended and flushed at once, a passing record's line goes to the new
records.jsonl, written under a temporary name and moved into place in one rename
(`RunDir.replace_lines`) once every reject is written. A kill before the rename leaves the old
records.jsonl, with some failing documents in both files; the rerun finds them failing again
and does not write their rejects twice. Memory: one record at a time, plus the ids the step has
already rejected.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from generator.errors import UserError
from generator.records import Record, make_reject
from generator.rundir import RECORDS, RunDir


@dataclass
class Moved:
    """What `move_failing` did: records kept, and records moved to rejects.jsonl."""

    kept: int = 0
    moved: int = 0


def move_failing(rundir: RunDir, verdicts: Path, step: str) -> Moved:
    """Move the records `verdicts` failed to rejects.jsonl (step `step`, the first failure's
    reason and detail) and keep the rest in records.jsonl (see the module docstring)."""
    already = {r.task_id for r in rundir.reject_lines() if r is not None and r.step == step}
    result = Moved()

    def kept() -> Iterator[str]:
        with verdicts.open(encoding="utf-8") as lines:
            for line in _record_lines(rundir.path / RECORDS):
                verdict = json.loads(next(lines, "null"))
                if verdict is None:
                    raise _mismatch(verdicts, "fewer verdicts than records")
                if verdict["passed"]:
                    result.kept += 1
                    yield line
                    continue
                record = Record.model_validate_json(line)  # only the failing ones are parsed
                if record.id != verdict["id"]:
                    raise _mismatch(verdicts, f"document {record.id} has {verdict['id']}'s verdict")
                result.moved += 1
                if record.id not in already:
                    first = verdict["failures"][0]
                    reject = make_reject(
                        record, step, first["reason"], first["detail"], record.text
                    )
                    rundir.append_reject(reject)
            if next(lines, None) is not None:
                raise _mismatch(verdicts, "more verdicts than records")

    rundir.replace_lines(RECORDS, kept())
    return result


def _mismatch(verdicts: Path, what: str) -> UserError:
    return UserError(
        f"{verdicts} does not match {RECORDS} ({what}): records.jsonl changed since the check; "
        "run the check again"
    )


def _record_lines(path: Path) -> Iterator[str]:
    """records.jsonl's lines without their newline, blank ones skipped (as the readers do)."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield line.rstrip("\n")
