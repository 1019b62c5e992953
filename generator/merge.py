"""`archetypes merge SHARD_DIR... --out DIR`: combine shard run directories into one run.

Shards split the plan by task index, so their records never share an id; merging restores plan
order, checks near-duplicates across shards (a shard could not see the others while it ran), and
sums usage, cost and faults into one manifest. The shards are read, never changed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.batch import BatchTotals
from generator.errors import UserError
from generator.gates.dedup import DedupIndex
from generator.records import Record, make_reject
from generator.rundir import CACHE, MANIFEST, RECORDS, REJECTS, RunDir

# Must agree across shards for their union to be one run.
_SAME = ("seed", "provider", "model", "archetype_ids", "template_versions")


@dataclass
class MergeSummary:
    shards: int
    records: int
    cross_shard_duplicates: int
    out: Path


def find_shards(paths: Sequence[Path]) -> list[Path]:
    """Shard run directories: given directly, or the shard-* folders inside a given folder."""
    shards: list[Path] = []
    for path in paths:
        if (path / MANIFEST).exists():
            shards.append(path)
        elif path.is_dir() and sorted(path.glob("shard-*-of-*")):
            shards.extend(p for p in sorted(path.glob("shard-*-of-*")) if (p / MANIFEST).exists())
        else:
            raise UserError(
                f"{path}: not a run directory (no manifest.json) and holds no shard-*-of-* folders"
            )
    return shards


def _manifests(shards: Sequence[Path]) -> list[dict[str, Any]]:
    manifests = []
    for shard in shards:
        try:
            manifests.append(json.loads((shard / MANIFEST).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            raise UserError(
                f"{shard / MANIFEST}: unreadable; was this shard's run started?"
            ) from None
    first = manifests[0]
    for shard, manifest in zip(shards[1:], manifests[1:], strict=True):
        for key in _SAME:
            if manifest.get(key) != first.get(key):
                raise UserError(
                    f"{shard} has a different {key} than {shards[0]}: these shards are not one run"
                )
    indices = [(m.get("shard") or {}).get("index") for m in manifests]
    if len(set(indices)) != len(indices):
        raise UserError("two of the given directories are the same shard; give each shard once")
    return manifests


def merge(paths: Sequence[Path], out: Path) -> MergeSummary:
    shards = find_shards(paths)
    if not shards:
        raise UserError("no shard directories given")
    manifests = _manifests(shards)
    if (out / RECORDS).exists():
        raise UserError(f"{out} already holds a run; merge into a new, empty --out")
    with RunDir(out) as merged:
        records = _merge_records(shards)
        dedup = DedupIndex()
        kept = 0
        duplicates = 0
        for record in records:
            outcome = dedup.check(
                record.id,
                record.text,
                allowed_names=[*record.names, record.ai_name, record.setting],
            )
            near = [
                f for f in outcome.failures if f.reason in ("near-duplicate", "exact-duplicate")
            ]
            if near:
                duplicates += 1
                reject = make_reject(record, "merge", near[0].reason, near[0].detail, record.text)
                merged.append(REJECTS, reject.model_dump(mode="json"))
                continue
            dedup.add(record.id, record.text)
            merged.append(RECORDS, record.model_dump_json())
            kept += 1
        for shard in shards:
            with RunDir(shard) as source:
                for name in (REJECTS, CACHE):
                    for line in source.read_jsonl(name):
                        merged.append(name, line)
        merged.write_manifest(_merged_manifest(manifests, shards, kept, merged))
    return MergeSummary(len(shards), kept, duplicates, out)


def _merge_records(shards: Sequence[Path]) -> list[Record]:
    """All shards' records in plan order. Held in memory: a record is a few KB, so a million
    documents need a few GB; merge on a machine sized for the corpus."""
    records: list[Record] = []
    for shard in shards:
        with RunDir(shard) as source:
            records.extend(Record.model_validate(line) for line in source.read_jsonl(RECORDS))
    ids = Counter(r.id for r in records)
    repeated = [i for i, n in ids.items() if n > 1]
    if repeated:
        raise UserError(
            f"record {repeated[0]} appears in more than one shard: were the shards run with the same --shard?"
        )
    return sorted(records, key=lambda r: r.index)


def _merged_manifest(
    manifests: list[dict[str, Any]], shards: Sequence[Path], kept: int, merged: RunDir
) -> dict[str, Any]:
    first = dict(manifests[0])
    usage: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    for manifest in manifests:
        usage.update(manifest.get("usage", {}))
        faults.update(manifest.get("faults", {}))
    rejected = Counter(r["reason"] for r in merged.read_jsonl(REJECTS))
    counts = {
        s: (m.get("shard") or {}).get("count") for s, m in zip(shards, manifests, strict=True)
    }
    expected = next(iter(counts.values()))
    first.update(
        n=sum(int(m.get("n", 0)) for m in manifests),
        shard=None,
        merged_from=[
            {
                "path": str(s),
                "shard": m.get("shard"),
                "status": m.get("status"),
                "accepted": (m.get("counts") or {}).get("accepted"),
            }
            for s, m in zip(shards, manifests, strict=True)
        ],
        status="complete"
        if all(m.get("status") == "complete" for m in manifests) and len(shards) == expected
        else "partial",
        counts={
            "accepted": kept,
            "rejected": sum(rejected.values()),
            "rejected_by_reason": dict(sorted(rejected.items())),
        },
        usage=dict(usage),
        faults=dict(sorted(faults.items())),
        cost_usd=round(sum(float(m.get("cost_usd", 0.0)) for m in manifests), 6),
        cost_saved_usd=round(sum(float(m.get("cost_saved_usd", 0.0)) for m in manifests), 6),
        batch=_merged_batches(manifests),
    )
    first.pop("calls_this_session", None)
    return first


def _merged_batches(manifests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The shards' `batch` sections summed; None when no shard used provider batches."""
    sections = [BatchTotals.model_validate(m["batch"]) for m in manifests if m.get("batch")]
    if not sections:
        return None
    total = sections[0]
    for section in sections[1:]:
        total += section
    return total.model_dump(mode="json")
