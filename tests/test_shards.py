"""The dataset's parquet shards (generator/shards.py): bounded in rows and row groups, and named
as the Hub expects."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from generator import shards as shard_writer
from generator.dataset import BuildOptions, build
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "data" / "run_fixture"


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A writable copy of the fixture run."""
    target = tmp_path / "run"
    shutil.copytree(FIXTURE, target)
    return target


def test_shards_are_bounded_and_named_for_the_hub(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shard_writer, "ROW_GROUP_ROWS", 3)
    result = build(run, BuildOptions(shard_rows=7))
    shards = result.splits["train"].shards
    assert len(shards) == 5  # 30 rows, 7 per shard
    assert shards == [f"data/train-{i:05d}-of-00005.parquet" for i in range(5)]
    for shard in shards:
        meta = pq.ParquetFile(run / "dataset" / shard).metadata
        assert meta.num_rows <= 7
        assert all(meta.row_group(i).num_rows <= 3 for i in range(meta.num_row_groups))
        assert meta.row_group(0).column(0).compression == "ZSTD"
    assert not list((run / "dataset" / "data").glob("*.partial"))
