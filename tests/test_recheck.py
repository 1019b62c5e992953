"""Re-checking a finished run (generator/recheck.py, `archetypes check`): the judge runs again
and `--apply` moves the failures to the rejects."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import read_jsonl, run_cli
from tests.support.runs import generate_concurrently


def test_check_rejudges_a_run_and_apply_moves_failures(make_stub, stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert generate_concurrently(out, "-n", "3", "--base-url", stub.base_url).returncode == 0
    before = (out / "records.jsonl").read_bytes()
    strict = make_stub(judge_fails_unrevised=True, model="strict-judge")

    report_only = run_cli("check", str(out), "--judge-base-url", strict.base_url)
    assert report_only.returncode == 0, report_only.stderr
    assert (
        "checked 3 documents with judge strict-judge: 0 pass, 3 fail (judge-low-focus 3)"
        in report_only.stdout
    )
    assert (out / "records.jsonl").read_bytes() == before, "without --apply nothing changes"
    verdicts = read_jsonl(out / "checks" / "strict-judge.jsonl")
    assert [v["passed"] for v in verdicts] == [False, False, False]
    assert verdicts[0]["judge"]["focus_score"] == 2

    applied = run_cli("check", str(out), "--judge-base-url", strict.base_url, "--apply")
    assert applied.returncode == 0, applied.stderr
    assert read_jsonl(out / "records.jsonl") == []
    assert [r["step"] for r in read_jsonl(out / "rejects.jsonl")] == ["check"] * 3
    calls = len(strict.log)
    assert calls == 3, "the second check re-used the cached verdicts"

    topped_up = generate_concurrently(out, "-n", "3", "--base-url", stub.base_url)
    assert topped_up.returncode == 0, topped_up.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 3
