"""Benchmark 8: the corpus-wide near-duplicate pass agrees with the in-run gate.

One synthetic run of N documents (bench/postprocess.py's generator, which notes every planted
copy in planted.jsonl: 2% exact and 2% near copies of earlier documents), then
`archetypes merge RUN --out OUT` once per executor: `in-process` (the gate's own index, one
process) and `local` (datatrove's local executor, --workers K). For each: wall, CPU and peak
memory of the process tree (bench/scale.py's sampler), the documents kept and removed, the share
of planted copies removed, and the share whose removal names their source. Then how far the
keep sets of the two paths differ (symmetric difference over the in-process keep set).

    python -m bench.dedup_agreement --n 100000 [--workers 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench._common import PYTHON, save
from bench.postprocess import PLANTED
from bench.scale import make_parallel, measure


def _outcome(merged: Path) -> tuple[set[str], dict[str, str]]:
    """The ids merge kept, and for each id it removed the detail naming what it duplicates."""
    with (merged / "records.jsonl").open(encoding="utf-8") as lines:
        kept = {json.loads(line)["id"] for line in lines}
    removed: dict[str, str] = {}
    with (merged / "rejects.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            if row["step"] == "merge":
                removed[row["task_id"]] = row["detail"]
    return kept, removed


def _planted(run: Path) -> list[tuple[str, str]]:
    """(copy id, source id) of every planted copy."""
    with (run / "records.jsonl").open(encoding="utf-8") as lines:
        ids = [json.loads(line)["id"] for line in lines]
    with (run / PLANTED).open(encoding="utf-8") as lines:
        return [(ids[row["index"]], ids[row["source"]]) for row in map(json.loads, lines)]


def agreement(n: int, work: Path, workers: int) -> dict[str, Any]:
    run = work / f"run-{n}"
    if not (run / PLANTED).exists():
        make_parallel(n, run, workers)
    planted = _planted(run)
    result: dict[str, Any] = {"documents": n, "planted": len(planted), "workers": workers}
    paths = {"in-process": ["--executor", "in-process"]}
    paths["local"] = ["--executor", "local", "--workers", str(workers)]
    keeps: dict[str, set[str]] = {}
    for name, flags in paths.items():
        out = work / f"merged-{name}"
        shutil.rmtree(out, ignore_errors=True)
        measured = measure(
            [PYTHON, "-m", "generator", "merge", str(run), "--out", str(out), *flags]
        )
        kept, removed = _outcome(out)
        caught = [(copy, source) for copy, source in planted if copy in removed]
        measured.update(
            kept=len(kept),
            removed=len(removed),
            planted_caught=round(len(caught) / len(planted), 4),
            planted_source_named=round(
                sum(1 for copy, source in caught if source in removed[copy]) / len(planted), 4
            ),
            cpu_ms_per_document=round(1000 * measured["cpu_s"] / n, 3),
        )
        measured.pop("result", None)
        result[name], keeps[name] = measured, kept
        shutil.rmtree(out, ignore_errors=True)
    difference = keeps["in-process"] ^ keeps["local"]
    result["keep_set_difference"] = round(len(difference) / len(keeps["in-process"]), 6)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-agreement-"))
    result = agreement(args.n, work, args.workers)
    path = save(f"dedup-agreement-{args.n}", result)
    print(json.dumps(result, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
