"""Sharded runs and merging, several endpoints at once, and re-checking a finished run."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from generator.plan import plan
from generator.spec import load_specs
from tests.conftest import LIBRARY, read_jsonl, run_cli

SPECS = [str(LIBRARY / "patient-tutor.yaml"), str(LIBRARY / "lab-partner.yaml")]


def generate(out: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("generate", *SPECS, "--out", str(out), "--concurrency", "4", *args, env=env)


def test_shards_split_the_plan_and_merge_back_into_one_run(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    for index in (0, 1, 2):
        result = generate(out, "-n", "8", "--base-url", stub.base_url, "--shard", f"{index}/3")
        assert result.returncode == 0, result.stderr
    sizes = [len(read_jsonl(out / f"shard-{i:04d}-of-0003" / "records.jsonl")) for i in range(3)]
    assert sizes == [3, 3, 2]

    # Two shards ran through provider batches: the merged manifest sums what collect found.
    for index, section in ((0, _batch_section(1, 3, unexpected=1)), (2, _batch_section(2, 5))):
        path = out / f"shard-{index:04d}-of-0003" / "manifest.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "batch": section}))

    merged = tmp_path / "merged"
    result = run_cli("merge", str(out), "--out", str(merged))
    assert result.returncode == 0, result.stderr
    records = read_jsonl(merged / "records.jsonl")
    expected = [t.id for t in plan(load_specs([Path(s) for s in SPECS]), 8, seed=0)]
    assert [r["id"] for r in records] == expected, (
        "the shards together ran exactly the unsharded plan"
    )
    manifest = json.loads((merged / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts"]["accepted"] == 8
    assert manifest["usage"]["completions"] == 24
    assert len(manifest["merged_from"]) == 3
    assert len(read_jsonl(merged / "cache.jsonl")) == 24
    assert manifest["batch"] == {
        "batches": 3,
        "collected": 3,
        "results": {**_batch_section(3, 8, unexpected=1)["results"]},
    }

    again = run_cli("merge", str(out), "--out", str(merged))
    assert again.returncode == 2
    assert "already holds a run" in again.stderr


def _batch_section(batches: int, succeeded: int, unexpected: int = 0) -> dict:
    from generator.backends.base import BatchCounts
    from generator.batch_ledger import BatchTotals

    counts = BatchCounts(succeeded=succeeded, unexpected=unexpected)
    return BatchTotals(batches=batches, collected=batches, results=counts).model_dump(mode="json")


def test_slurm_array_variables_pick_the_shard(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "2"}
    result = generate(out, "-n", "4", "--base-url", stub.base_url, env=env)
    assert result.returncode == 0, result.stderr
    assert "shard 1 of 2" in result.stdout
    assert len(read_jsonl(out / "shard-0001-of-0002" / "records.jsonl")) == 2


def test_kubernetes_index_needs_a_count(stub, tmp_path: Path) -> None:
    result = generate(
        tmp_path / "run", "-n", "4", "--base-url", stub.base_url, env={"JOB_COMPLETION_INDEX": "0"}
    )
    assert result.returncode == 2
    assert "--shard-count" in result.stderr
    ok = generate(
        tmp_path / "run",
        "-n",
        "4",
        "--base-url",
        stub.base_url,
        "--shard-count",
        "2",
        env={"JOB_COMPLETION_INDEX": "0"},
    )
    assert ok.returncode == 0, ok.stderr
    assert len(read_jsonl(tmp_path / "run" / "shard-0000-of-0002" / "records.jsonl")) == 2


def test_a_bad_shard_flag_is_a_usage_error(stub, tmp_path: Path) -> None:
    result = generate(tmp_path / "run", "-n", "4", "--base-url", stub.base_url, "--shard", "3/3")
    assert result.returncode == 2
    assert "0 <= I < K" in result.stderr


def test_requests_spread_over_several_endpoints(make_stub, tmp_path: Path) -> None:
    first, second = make_stub(latency=0.05), make_stub(latency=0.05)
    out = tmp_path / "run"
    result = generate(out, "-n", "8", "--base-url", first.base_url, "--base-url", second.base_url)
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 8
    assert len(first.log) >= 6 and len(second.log) >= 6, (len(first.log), len(second.log))
    assert len(first.log) + len(second.log) == 24
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["served"] for e in manifest["endpoints"]] == [len(first.log), len(second.log)]


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens here any more


def test_a_dead_endpoint_is_taken_out_and_the_run_completes(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = generate(
        out,
        "-n",
        "6",
        "--base-url",
        stub.base_url,
        "--base-url",
        _dead_url(),
        "--model",
        "stub-model",
    )
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 6
    manifest = json.loads((out / "manifest.json").read_text())
    live, dead = manifest["endpoints"]
    assert live["served"] == 18
    assert dead["served"] == 0 and 1 <= dead["failures"] <= 4, (
        "taken out after failing, not hammered"
    )


def test_check_rejudges_a_run_and_apply_moves_failures(make_stub, stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert generate(out, "-n", "3", "--base-url", stub.base_url).returncode == 0
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

    topped_up = generate(out, "-n", "3", "--base-url", stub.base_url)
    assert topped_up.returncode == 0, topped_up.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 3
