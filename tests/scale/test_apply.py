"""`archetypes check RUN --judge off --executor local` (generator/recheck.py's
`check_on_executor`, generator/scale/apply.py): the per-document gates on datatrove's local
executor give the in-process check's verdicts, near-duplicates aside, and `--apply` moves the
failing records streaming, once, keeping the others in order byte for byte."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

from bench.postprocess import BAD, _loop, make_run
from generator.rundir import RECORDS, RunDir
from generator.scale.apply import move_failing
from tests.conftest import LIBRARY, read_jsonl, run_cli

OFFLINE = Path("checks") / "offline.jsonl"
ON_EXECUTOR = ("--judge", "off", "--specs", str(LIBRARY), "--executor", "local", "--workers", "2")
PLANTED = {5: BAD[0], 50: BAD[3], 150: BAD[1]}  # line -> the bad opening put before its text
LOOPED = 250  # the line whose text ends in a loop of one sentence


def _plant(run: Path) -> None:
    """make_run's corpus (about 1% bad documents, 4% duplicates) with four more bad ones."""
    lines = (run / RECORDS).read_text(encoding="utf-8").splitlines()
    for number, opening in {**PLANTED, LOOPED: ""}.items():
        row = json.loads(lines[number])
        text = _loop(row["text"]) if number == LOOPED else opening + row["text"]
        lines[number] = json.dumps({**row, "text": text}, ensure_ascii=False)
    (run / RECORDS).write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("check") / "run"
    make_run(300, run, seed=3)
    _plant(run)
    return run


@pytest.fixture
def run(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(pristine, copy)
    return copy


def _ids(path: Path) -> list[str]:
    return [row["id"] for row in read_jsonl(path)]


def test_executor_verdicts_are_the_in_process_ones_but_near_duplicates(
    pristine: Path, tmp_path: Path
) -> None:
    in_process, on_executor = tmp_path / "in-process", tmp_path / "executor"
    shutil.copytree(pristine, in_process)
    shutil.copytree(pristine, on_executor)

    plain = run_cli("check", str(in_process), "--judge", "off", "--specs", str(LIBRARY))
    assert plain.returncode == 0, plain.stderr
    scaled = run_cli("check", str(on_executor), *ON_EXECUTOR)
    assert scaled.returncode == 0, scaled.stderr
    assert "near-duplicates not checked" in scaled.stdout.splitlines()[0]
    assert not (on_executor / "work").exists(), "the scratch folder is removed when done"

    expected = (in_process / OFFLINE).read_text(encoding="utf-8").splitlines()
    got = (on_executor / OFFLINE).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in got] == _ids(pristine / RECORDS)
    comparable = 0
    for want, have in zip(expected, got, strict=True):
        verdict = json.loads(want)
        if not any(f["gate"] == "dedup" for f in verdict["failures"]):
            assert have == want, "same bytes as the in-process check"
            comparable += 1
            continue
        offline = [f for f in verdict["failures"] if f["gate"] != "dedup"]
        assert json.loads(have) == {**verdict, "failures": offline, "passed": not offline}
    assert comparable >= 0.9 * len(expected)
    failed = [json.loads(line) for line in got if not json.loads(line)["passed"]]
    assert len(failed) >= len(PLANTED) + 1
    assert all(f["failures"][0]["gate"] != "dedup" for f in failed)


def test_apply_moves_the_failing_records_once_in_order(run: Path) -> None:
    original = (run / RECORDS).read_text(encoding="utf-8").splitlines()
    before = read_jsonl(run / "rejects.jsonl")

    applied = run_cli("check", str(run), *ON_EXECUTOR, "--tasks", "3", "--apply")
    assert applied.returncode == 0, applied.stderr
    assert "failing documents moved to rejects.jsonl" in applied.stdout

    verdicts = {v["id"]: v for v in read_jsonl(run / OFFLINE)}
    failing = [
        json.loads(line)["id"]
        for line in original
        if not verdicts[json.loads(line)["id"]]["passed"]
    ]
    assert len(failing) >= len(PLANTED) + 1
    kept = (run / RECORDS).read_text(encoding="utf-8").splitlines()
    assert kept == [line for line in original if json.loads(line)["id"] not in failing]
    new_rejects = read_jsonl(run / "rejects.jsonl")[len(before) :]
    assert [r["task_id"] for r in new_rejects] == failing
    for reject in new_rejects:
        first = verdicts[reject["task_id"]]["failures"][0]
        assert (reject["step"], reject["reason"], reject["detail"]) == (
            "check",
            first["reason"],
            first["detail"],
        )
        assert reject["text"]

    records_bytes, rejects_bytes = (
        (run / RECORDS).read_bytes(),
        (run / "rejects.jsonl").read_bytes(),
    )
    again = run_cli("check", str(run), *ON_EXECUTOR, "--apply")
    assert again.returncode == 0, again.stderr
    assert f"{len(kept)} pass, 0 fail" in again.stdout
    assert (run / RECORDS).read_bytes() == records_bytes
    assert (run / "rejects.jsonl").read_bytes() == rejects_bytes


def test_a_kill_before_the_rename_is_finished_by_the_rerun(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rejects written, records.jsonl not yet replaced (a kill in between): the rerun moves
    the same records and writes no reject twice."""
    checked = run_cli("check", str(run), *ON_EXECUTOR)
    assert checked.returncode == 0, checked.stderr
    before = len(read_jsonl(run / "rejects.jsonl"))
    original_ids = _ids(run / RECORDS)

    class Killed(Exception):
        pass

    def killed(name: str, lines: Iterable[str]) -> None:
        list(lines)  # every reject appended, then the kill
        raise Killed

    with RunDir(run) as rundir:
        monkeypatch.setattr(rundir, "replace_lines", killed)
        with pytest.raises(Killed):
            move_failing(rundir, run / OFFLINE, "check")
    assert _ids(run / RECORDS) == original_ids, "the old records.jsonl is still there"
    moved = len(read_jsonl(run / "rejects.jsonl")) - before
    assert moved >= len(PLANTED) + 1

    rerun = run_cli("check", str(run), *ON_EXECUTOR, "--apply")
    assert rerun.returncode == 0, rerun.stderr
    rejected = [r["task_id"] for r in read_jsonl(run / "rejects.jsonl")[before:]]
    kept = _ids(run / RECORDS)
    assert len(rejected) == moved and len(set(rejected)) == moved
    assert sorted(kept + rejected) == sorted(original_ids)
    assert kept == [i for i in original_ids if i not in set(rejected)]


def test_the_judge_does_not_run_on_an_executor(run: Path) -> None:
    before = (run / RECORDS).read_bytes()
    result = run_cli("check", str(run), "--specs", str(LIBRARY), "--executor", "local")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: the judge runs only in process: drop --executor local, or pass --judge off "
        "to run the offline gates on the executor"
    ]
    assert (run / RECORDS).read_bytes() == before and not (run / "checks").exists()


def test_executor_settings_need_an_executor(run: Path) -> None:
    result = run_cli("check", str(run), "--judge", "off", "--workers", "2")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--workers is an executor setting" in result.stderr
