"""The run directory's typed door: manifest, cache lines, reject lines, the lock, read-only views."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generator.backends.base import Completion
from generator.errors import RunLockedError
from generator.records import Reject
from generator.rundir import (
    CACHE,
    HOLDER,
    MANIFEST,
    RECORDS,
    REJECTS,
    CacheLine,
    Manifest,
    RunDir,
    read_run,
)

FIXTURE = Path(__file__).parent / "data" / "run_fixture"


def _reject(reason: str) -> Reject:
    return Reject(
        task_id=f"t-{reason}",
        index=1,
        archetype_id="lab-partner",
        step="gate",
        reason=reason,
        detail="why",
        created_at="2025-05-01T10:00:00Z",
    )


def test_fixture_manifest_loads_typed() -> None:
    manifest = read_run(FIXTURE).read_manifest()
    assert manifest is not None
    raw = json.loads((FIXTURE / MANIFEST).read_text(encoding="utf-8"))
    assert manifest.seed == raw["seed"] and manifest.archetype_ids == raw["archetype_ids"]
    assert manifest.to_json() == raw, "same keys and values when written back"


def test_manifest_round_trip_keeps_extra_keys_and_adds_none(tmp_path: Path) -> None:
    data = {"seed": 3, "provider": "local", "from_the_future": {"x": [1, 2]}, "n": 5}
    (tmp_path / MANIFEST).write_text(json.dumps(data), encoding="utf-8")
    with RunDir(tmp_path) as rundir:
        manifest = rundir.read_manifest()
        assert manifest is not None and manifest.samples_per_request == 1
        manifest.status = "complete"
        rundir.write_manifest(manifest)
    written = json.loads((tmp_path / MANIFEST).read_text(encoding="utf-8"))
    assert written == {**data, "status": "complete"}, "unknown keys kept, absent keys not added"


def test_unreadable_manifest_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text("{not json", encoding="utf-8")
    assert read_run(tmp_path).read_manifest() is None
    (tmp_path / MANIFEST).write_text('{"archetypes": 5}', encoding="utf-8")
    assert read_run(tmp_path).read_manifest() is None
    assert Manifest().to_json() == {}


def test_cache_line_round_trip(tmp_path: Path) -> None:
    completion = Completion(text="hi", finish_reason="stop", model="m", input_tokens=3)
    line = CacheLine(key="k", task_id="t", step="write", cost_usd=0.5, completion=completion)
    with RunDir(tmp_path) as rundir:
        rundir.append_cache(line)
    (back,) = read_run(tmp_path).cache_lines()
    assert back == line and back.list_cost == 0.5
    raw = json.loads((tmp_path / CACHE).read_text(encoding="utf-8"))
    assert set(raw) == {"key", "task_id", "step", "cost_usd", "list_cost_usd", "completion"}


def test_reject_lines_are_lenient_and_counted(tmp_path: Path) -> None:
    with RunDir(tmp_path) as rundir:
        rundir.append_reject(_reject("truncated"))
        rundir.append_reject(_reject("truncated"))
        rundir.append(REJECTS, "[1, 2]")
        rundir.append(REJECTS, {"reason": "length", "extra": True})
    view = read_run(tmp_path)
    assert view.reject_reasons() == {"truncated": 2, "length": 1, "unreadable-line": 1}
    lines = list(view.reject_lines())
    assert lines[2] is None and lines[3] is not None and lines[3].archetype_id == "unknown"


def test_read_only_view_neither_locks_nor_repairs(tmp_path: Path) -> None:
    (tmp_path / RECORDS).write_text('{"id": "a"}\n{"id": "b', encoding="utf-8")
    view = read_run(tmp_path)
    assert [line["id"] for line in view.read_jsonl(RECORDS)] == ["a"], "partial line skipped"
    assert (tmp_path / RECORDS).read_text(encoding="utf-8").endswith('{"id": "b'), "not repaired"
    assert not (tmp_path / ".lock").exists()
    with RunDir(tmp_path):  # a view does not hold the lock, so a writer can open the run
        assert (tmp_path / RECORDS).read_text(encoding="utf-8") == '{"id": "a"}\n', "repaired"
        assert view.holder() is not None


def test_second_opener_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with RunDir(tmp_path):
        assert (tmp_path / HOLDER).read_text(encoding="utf-8").startswith("archetypes pid ")
        with pytest.raises(RunLockedError, match=r"in use by archetypes pid \d+; wait"):
            RunDir(tmp_path).open()
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from generator.rundir import RunDir; RunDir({str(tmp_path)!r}).open()",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert other.returncode != 0 and "in use by archetypes pid" in other.stderr
    assert read_run(tmp_path).holder() is None
    with RunDir(tmp_path):  # released: the next session opens it
        pass
