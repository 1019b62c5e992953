"""The generation commands' options (generator/cli/generation.py): which shard a worker runs,
from Slurm array and Kubernetes indexed-job variables, and bad shard flags as usage errors."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import read_jsonl
from tests.support.runs import generate_concurrently


def test_slurm_array_variables_pick_the_shard(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "2"}
    result = generate_concurrently(out, "-n", "4", "--base-url", stub.base_url, env=env)
    assert result.returncode == 0, result.stderr
    assert "shard 1 of 2" in result.stdout
    assert len(read_jsonl(out / "shard-0001-of-0002" / "records.jsonl")) == 2


def test_kubernetes_index_needs_a_count(stub, tmp_path: Path) -> None:
    result = generate_concurrently(
        tmp_path / "run", "-n", "4", "--base-url", stub.base_url, env={"JOB_COMPLETION_INDEX": "0"}
    )
    assert result.returncode == 2
    assert "--shard-count" in result.stderr
    ok = generate_concurrently(
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
    result = generate_concurrently(
        tmp_path / "run", "-n", "4", "--base-url", stub.base_url, "--shard", "3/3"
    )
    assert result.returncode == 2
    assert "0 <= I < K" in result.stderr
