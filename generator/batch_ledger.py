"""DIR/batches.jsonl: the run's provider batches (generator/batch_queue.py submits them,
generator/batch.py follows and collects them), one JSON object per line, folded by `id` (later
lines update earlier ones):

    {"event": "created", "id", "provider", "model", "base_url", "created_at", "status",
     "ended", "request_counts", "output_file_id", "error_file_id", "results_url", "errors",
     "requests": {custom_id: {"task_id", "step"}}, "collected": false}
    {"event": "updated", "id", "status", "ended", "request_counts", ...}
    {"event": "collected", "id", "collected": true, "collected_at", "summary": {...}}

Requests in a batch not yet collected are "in flight". No secrets are written: keys come from
the environment when a backend is rebuilt from a record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from generator.backends.base import BatchCounts, BatchInfo
from generator.rundir import BATCHES, RunDir


class Ledger:
    """The run's batches, folded from batches.jsonl (append-only; later lines win)."""

    def __init__(self, rundir: RunDir):
        self.rundir = rundir
        self.records: dict[str, dict[str, Any]] = {}
        for line in rundir.read_jsonl(BATCHES):
            self._merge(line)

    def _merge(self, line: dict[str, Any]) -> None:
        record = self.records.setdefault(line["id"], {})
        record.update({k: v for k, v in line.items() if k != "event"})

    def write(self, event: str, fields: dict[str, Any]) -> None:
        line = {"event": event, **fields}
        self.rundir.append(BATCHES, line)
        self._merge(line)

    def batch_ids(self) -> list[str]:
        """The provider batches (not the submission records)."""
        return [i for i, r in self.records.items() if "submission_record" not in r]

    def unresolved(self) -> list[str]:
        """Submission records whose batch creation never reported back (the process died)."""
        return [
            i
            for i, r in self.records.items()
            if "submission_record" in r and r.get("status") == "submitting"
        ]

    def in_flight(self) -> set[str]:
        """Custom ids of every batch not yet collected, and of submissions not resolved."""
        ids: set[str] = set()
        for record in self.records.values():
            if not record.get("collected"):
                ids.update(record.get("requests", {}))
        return ids

    def info(self, batch_id: str) -> BatchInfo:
        record = self.records[batch_id]
        known = {name: record[name] for name in BatchInfo.model_fields if name in record}
        known["requests"] = len(record.get("requests", {}))
        return BatchInfo.model_validate(known)

    def update(self, info: BatchInfo) -> BatchInfo:
        """Record what the provider said now, if anything changed."""
        fresh = provider_fields(info)
        record = self.records[info.id]
        changed = {k: v for k, v in fresh.items() if record.get(k) != v}
        if changed:
            self.write("updated", {"id": info.id, **changed})
        return self.info(info.id)


def provider_fields(info: BatchInfo) -> dict[str, Any]:
    return info.model_dump(
        mode="json",
        include={
            "status",
            "ended",
            "request_counts",
            "output_file_id",
            "error_file_id",
            "results_url",
            "errors",
        },
    )


def resolved(record_id: str, status: str, batch_id: str | None = None) -> dict[str, Any]:
    return {"id": record_id, "status": status, "collected": True, "batch": batch_id}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class BatchTotals(BaseModel):
    """The manifest's `batch` section: the run's batches and what collecting them found."""

    model_config = ConfigDict(frozen=True)

    batches: int  # provider batches submitted from this run
    collected: int  # of which collected
    results: BatchCounts  # summed over the collected ones

    def __add__(self, other: BatchTotals) -> BatchTotals:
        """Two shards' sections as one (merge)."""
        return BatchTotals(
            batches=self.batches + other.batches,
            collected=self.collected + other.collected,
            results=self.results + other.results,
        )


def batch_totals(rundir: RunDir) -> BatchTotals | None:
    """The run's batches and what collecting them found; None for a run without batches."""
    ledger = Ledger(rundir)
    infos = [ledger.info(batch_id) for batch_id in ledger.batch_ids()]
    if not infos:
        return None
    results = BatchCounts()
    for info in infos:
        if info.summary is not None:
            results += info.summary
    return BatchTotals(
        batches=len(infos), collected=sum(info.collected for info in infos), results=results
    )


def manifest_section(rundir: RunDir) -> dict[str, Any] | None:
    """The manifest's `batch` section (see BatchTotals), or None for a run without batches."""
    totals = batch_totals(rundir)
    return totals.model_dump(mode="json") if totals is not None else None


def update_manifest(rundir: RunDir) -> None:
    """Bring the manifest's `batch` section up to date after a collect, so the counts are
    there before the next `generate` rewrites the manifest (which refreshes it too)."""
    manifest = rundir.read_manifest()
    if manifest is not None:
        manifest.batch = manifest_section(rundir)
        rundir.write_manifest(manifest)
