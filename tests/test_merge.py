"""Merging the run directories of a sharded run back into one (generator/merge.py): shards
split the plan, keep groups of shared idea calls whole, and merge into exactly the plan."""

from __future__ import annotations

import json
from pathlib import Path

from generator.plan import plan
from generator.spec import load_specs
from tests.conftest import read_jsonl, run_cli
from tests.support.runs import SPECS, generate_against, generate_concurrently, idea_bodies


def test_shards_keep_groups_whole_and_merge_into_the_plan(make_stub, tmp_path: Path) -> None:
    stub = make_stub(keep_bodies=True)
    out = tmp_path / "run"
    for index in (0, 1):
        result = generate_against(
            out, stub.base_url, "-n", "12", "--samples-per-request", "3", "--shard", f"{index}/2"
        )
        assert result.returncode == 0, result.stderr
    assert [b.get("n") for b in idea_bodies(stub)] == [3, 3, 3, 3], "one call per group"
    merged = tmp_path / "merged"
    assert run_cli("merge", str(out), "--out", str(merged)).returncode == 0
    expected = plan(load_specs([Path(s) for s in SPECS]), 12, seed=0, samples=3)
    assert [r["id"] for r in read_jsonl(merged / "records.jsonl")] == [t.id for t in expected]


def test_shards_split_the_plan_and_merge_back_into_one_run(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    for index in (0, 1, 2):
        result = generate_concurrently(
            out, "-n", "8", "--base-url", stub.base_url, "--shard", f"{index}/3"
        )
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
