"""Post-processing of a whole corpus as datatrove pipeline steps: the per-document checks, the
corpus statistics and the dataset build, on the executors of generator/scale/executors.py
(local processes, Slurm, Ray).

Every step runs the code of the in-process path; only the cutting into tasks is new. The reader
is generator/scale/records.py's `RecordsReader`: task `rank` reads the records whose line starts
in its 1/world_size of records.jsonl, so joining the tasks' outputs by rank keeps their order.

- `CheckStep` walks each record through the in-run gatekeeper (`generator.gates.Gatekeeper`)
  restricted to the gates that judge a document on its own (tropes, truncation, heuristics,
  screen): one implementation of every check, used in-run and here. Near-duplicates are the
  corpus-wide MinHash pass's job (generator/scale/minhash.py), the judge costs calls, and the
  schema is checked on reading. Each task writes its verdicts (`verdicts/NNNNN.jsonl`);
  `join_verdicts` joins them (for `archetypes check --executor`, in its verdicts file's shape).
- `StatsStep` gathers `generator.stats.CorpusStats` over its records and saves them as a part
  (`stats/NNNNN.pickle`); `merge_stats` merges the parts in rank order
  (`CorpusStats.merge`: counts, sums and samples exact, sketches within their bounds).
- `BuildStep` runs `generator.dataset.write_part` on its records: its own parquet shards and
  card statistics; `generator.dataset.finish` (through `build_on_executor`) joins the parts.

Memory per task is one record at a time plus each step's bounded state, whatever the corpus.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from generator import dataset
from generator.archetype import Archetype
from generator.errors import UserError
from generator.gates import Gatekeeper, GatePolicy
from generator.gates.dedup import DedupIndex
from generator.records import Record
from generator.rundir import RECORDS, read_run
from generator.scale.executors import ExecutorOptions, completed, execute, make_executor
from generator.scale.records import Inputs, RecordsReader, document_record
from generator.spec import load_specs
from generator.stats import CorpusStats

# Gates that do not judge a document on its own, or not offline: left out of `CheckStep`.
NOT_PER_DOCUMENT = ("dedup", "judge", "schema")
VERDICTS = "verdicts"
STATS = "stats"
PARTS = "_parts"  # inside the temporary dataset folder of a build, removed before it is moved
SLURM_POLL_SECONDS = 30


def records_of(data: DocumentsPipeline) -> Iterator[Record]:
    """The typed records of the documents coming down the pipeline, one at a time."""
    for document in data or ():
        yield document_record(document)


# ---------------------------------------------------------------------------------------------
# Per-document checks


@dataclass(frozen=True)
class Verdict:
    """The per-document gates' verdict on one record, as one line of a verdicts file. `judge`
    is the judge's verdict the record already carries (these gates do not call the judge)."""

    id: str
    passed: bool
    failures: tuple[dict[str, str], ...]
    screen: tuple[str, ...]
    judge: dict[str, Any] | None = None

    def to_json(self) -> str:
        line = {"id": self.id, "passed": self.passed, "failures": list(self.failures)}
        extra = {"screen": list(self.screen), "judge": self.judge}
        return json.dumps({**line, **extra}, ensure_ascii=False)


class DocumentChecks:
    """The in-run gatekeeper with only the gates that judge a document on its own, in the
    in-run order and with the same `--relax` handling. The gates' review methods are
    coroutines that never wait, so one event loop per instance runs them."""

    def __init__(self, archetypes: Iterable[Archetype], relax: frozenset[str] = frozenset()):
        self.archetypes = {a.id: a for a in archetypes}
        self.keeper = Gatekeeper(GatePolicy(relax=relax, judge="off"), DedupIndex(), None)
        self.keeper.gates = [g for g in self.keeper.gates if g.name not in NOT_PER_DOCUMENT]
        self._loop = asyncio.new_event_loop()

    def check(self, record: Record) -> Verdict:
        archetype = self.archetypes.get(record.archetype_id)
        if archetype is None:
            raise UserError(
                f"no spec for archetype {record.archetype_id} (document {record.id}); "
                "pass its spec file with --specs"
            )
        review = self._loop.run_until_complete(self.keeper.review(record, archetype, record.names))
        checks = review.record.checks
        return Verdict(
            id=record.id,
            passed=review.passed,
            failures=tuple(
                {"gate": f.gate, "reason": f.reason, "detail": f.detail} for f in review.failures
            ),
            screen=tuple(checks.screen) if checks and checks.screen else (),
            judge=record.judge.model_dump(mode="json") if record.judge else None,
        )

    def close(self) -> None:
        self._loop.close()


class CheckStep(PipelineStep):
    """The per-document gates over each record; verdicts to `FOLDER/verdicts/NNNNN.jsonl`.
    Documents pass on with `metadata["verdict"]`; with `drop_failing` only those that passed."""

    name = "per-document gates"
    type = "🔻 - FILTER"

    def __init__(
        self,
        folder: Path,
        specs: Sequence[Path],
        relax: frozenset[str] = frozenset(),
        drop_failing: bool = False,
    ):
        super().__init__()
        self.folder = Path(folder)
        self.specs = [Path(p) for p in specs]
        self.relax = frozenset(relax)
        self.drop_failing = drop_failing

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        checks = DocumentChecks(load_specs(self.specs), self.relax)
        try:
            with _atomic(self.folder / VERDICTS / f"{rank:05d}.jsonl") as out:
                for document in data or ():
                    with self.track_time():
                        verdict = checks.check(document_record(document))
                    out.write(verdict.to_json() + "\n")
                    self.stat_update("passed" if verdict.passed else "failed")
                    for failure in verdict.failures[:1]:
                        self.stat_update(f"failed: {failure['reason']}")
                    document.metadata["verdict"] = verdict
                    if verdict.passed or not self.drop_failing:
                        yield document
        finally:
            checks.close()


def join_verdicts(
    folder: Path, world_size: int, target: Path, report: bool = False
) -> Counter[str]:
    """The tasks' verdict files joined in rank order (the order of the records) into `target`;
    returns the headline failure reasons counted, with "passed" for the rest. With `report`,
    each line in the shape of `archetypes check`'s verdicts file (see `report_line`)."""
    counts: Counter[str] = Counter()
    with _atomic(target) as out:
        for rank in range(world_size):
            with (folder / VERDICTS / f"{rank:05d}.jsonl").open(encoding="utf-8") as handle:
                for line in handle:
                    verdict = json.loads(line)
                    out.write(report_line(verdict) + "\n" if report else line)
                    failures = verdict["failures"]
                    counts[failures[0]["reason"] if failures else "passed"] += 1
    return counts


def report_line(verdict: dict[str, Any]) -> str:
    """A task's verdict line as `archetypes check` with the judge off writes it in process
    (RUN/checks/offline.jsonl): id, passed, failures, and the judge's verdict the record
    carries (null when it has none). The screen's themes are left out, as that file leaves
    them out (they are on the records)."""
    line = {k: verdict[k] for k in ("id", "passed", "failures")}
    return json.dumps({**line, "judge": verdict.get("judge")}, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# Statistics


class StatsStep(PipelineStep):
    """`CorpusStats` over the task's records, saved as `FOLDER/stats/NNNNN.pickle` for
    `merge_stats`. Documents pass on unchanged."""

    name = "corpus statistics"
    type = "📊 - STATS"

    def __init__(self, folder: Path, text_figures: bool = True):
        super().__init__()
        self.folder = Path(folder)
        self.text_figures = text_figures

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        stats = CorpusStats(text_figures=self.text_figures)
        for document in data or ():
            with self.track_time():
                stats.add(document_record(document))
            yield document
        save_part(self.folder / STATS / f"{rank:05d}.pickle", stats)


def merge_stats(folder: Path, world_size: int, text_figures: bool = True) -> CorpusStats:
    """The tasks' statistics merged in rank order: the figures of the whole corpus."""
    total = CorpusStats(text_figures=text_figures)
    for rank in range(world_size):
        total.merge(load_part(folder / STATS / f"{rank:05d}.pickle", CorpusStats))
    return total


# ---------------------------------------------------------------------------------------------
# Build


class BuildStep(PipelineStep):
    """`generator.dataset.write_part` over the task's records, into the build's temporary
    dataset folder (part number = rank); the part's summary is saved for `finish`."""

    name = "dataset build"
    type = "💽 - WRITER"

    def __init__(self, run_dir: Path, root: Path, options: dataset.BuildOptions):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.root = Path(root)
        self.options = options

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        counter = dataset.token_counter(self.options.tokenizer)
        judging = dataset.judge_check(self.run_dir)
        with self.track_time("task"):
            part = dataset.write_part(
                records_of(data), self.root, self.options, counter, judging, part=rank
            )
        self.stat_update("rows", value=sum(s.rows for s in part.splits.values()))
        save_part(self.root / PARTS / f"{rank:05d}.pickle", part)
        yield from ()


# ---------------------------------------------------------------------------------------------
# Running them


def run_steps(steps: list[PipelineStep], work: Path, options: ExecutorOptions) -> int:
    """Run one pipeline on the options' executor, its logs and completion markers in
    `work/logs`, and wait until every task is done (on Slurm, until the array job has
    finished: the joining that follows needs all the parts). Returns the number of tasks."""
    logs = work / "logs"
    executor = make_executor(steps, options, logs, name=type(steps[-1]).__name__.lower())
    execute(executor, options, logs)
    tasks = executor.world_size
    while not completed(logs, tasks):
        if options.kind == "local":
            raise UserError(f"a task failed; its log is in {logs}/logs; fix the cause and rerun")
        time.sleep(SLURM_POLL_SECONDS)
    return tasks


def check_corpus(
    run_dir: Path,
    target: Path,
    work: Path,
    options: ExecutorOptions,
    specs: Sequence[Path] = (),
    relax: frozenset[str] = frozenset(),
) -> Counter[str]:
    """The per-document gates over a run's records; one verdict line per record, in the order
    of records.jsonl and the shape of `archetypes check`'s verdicts file (`report_line`),
    written to `target`. Returns the headline reasons counted."""
    steps: list[PipelineStep] = [
        reader(run_dir),
        CheckStep(work, [p.resolve() for p in spec_paths(run_dir, specs)], relax),
    ]
    tasks = run_steps(steps, work, options)
    return join_verdicts(work, tasks, target, report=True)


def corpus_stats(
    run_dir: Path, work: Path, options: ExecutorOptions, text_figures: bool = True
) -> CorpusStats:
    """The report's and the card's statistics of a run's records, gathered in parts."""
    steps: list[PipelineStep] = [reader(run_dir), StatsStep(work, text_figures)]
    tasks = run_steps(steps, work, options)
    return merge_stats(work, tasks, text_figures)


def build_dataset(
    run_dir: Path, options: dataset.BuildOptions, executor: ExecutorOptions
) -> dataset.BuildResult:
    """`archetypes build`: on the executor, or in this process when the executor would run one
    local task anyway (`--workers 1`, the default: the same single part, without starting the
    executor's processes)."""
    executor.require_runtime()
    if executor.kind == "local" and executor.sharded_tasks() == 1:
        return dataset.build(run_dir, options)
    return build_on_executor(run_dir, options, executor)


def build_on_executor(
    run_dir: Path, options: dataset.BuildOptions, executor: ExecutorOptions
) -> dataset.BuildResult:
    """`archetypes build` with the pass over the records cut into tasks: each writes its own
    shards and statistics into the temporary dataset folder, `dataset.finish` joins them (the
    rows in the order of records.jsonl, shards numbered across the tasks)."""
    run_dir = Path(run_dir)

    def on_executor(root: Path, counter: dataset.TokenCounter) -> list[dataset.BuildPart]:
        work = root / PARTS
        steps: list[PipelineStep] = [reader(run_dir), BuildStep(run_dir, root, options)]
        tasks = run_steps(steps, work, executor)
        parts = [load_part(work / f"{rank:05d}.pickle", dataset.BuildPart) for rank in range(tasks)]
        shutil.rmtree(work)
        return parts

    return dataset.build_with(run_dir, options, on_executor)


# ---------------------------------------------------------------------------------------------
# Parts on disk


def save_part(path: Path, value: object) -> None:
    """One task's result, written whole or not at all (a killed task leaves no part)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with temporary.open("wb") as handle:
        pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(temporary, path)


def load_part(path: Path, kind: type[Any]) -> Any:
    """A part `save_part` wrote (this tool's own file, in the folder it made)."""
    with path.open("rb") as handle:
        value = pickle.load(handle)
    if not isinstance(value, kind):
        raise UserError(f"{path}: not a {kind.__name__} part; remove the folder and run again")
    return value


class _atomic:
    """A text file written under a temporary name and moved into place when complete."""

    def __init__(self, path: Path):
        self.path = path
        self.temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.handle: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.temporary.open("w", encoding="utf-8")
        return self.handle

    def __exit__(self, kind: object, *rest: object) -> None:
        assert self.handle is not None
        self.handle.close()
        if kind is None:
            os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)


def spec_paths(run_dir: Path, specs: Sequence[Path] = ()) -> list[Path]:
    """The spec files of a run: `specs` when given, else the ones its manifest recorded."""
    if specs:
        return [Path(p) for p in specs]
    manifest = read_run(run_dir).read_manifest()
    if manifest is None:
        raise UserError(f"{run_dir}: no manifest.json to find the specs in; pass --specs")
    paths = [Path(a.source) for a in manifest.archetypes if a.source is not None]
    if not paths:
        raise UserError(f"{run_dir}: the manifest records no spec files; pass them with --specs")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UserError(
            f"{run_dir}: the spec files the manifest records are gone ({', '.join(missing)}); "
            "pass them with --specs"
        )
    return paths


def reader(run_dir: Path) -> RecordsReader:
    """The reader of a run's records.jsonl, as it is now (lines appended later are left out)."""
    path = Path(run_dir) / RECORDS
    if not path.exists():
        raise UserError(f"{run_dir}: no {RECORDS}; run `archetypes generate --out {run_dir}`")
    return RecordsReader(Inputs.now([path]))
