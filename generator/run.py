"""Wires the pipeline: plan stream -> prompts -> backends -> records -> gates -> run directory.

A session runs in three stages: `prepare` (options checked, backends and run directory opened,
callers, gates, worker and scheduler built into a `RunState`), `drive` (a pool of worker
coroutines fed by the scheduler until N documents are accepted, counting earlier sessions) and
`conclude` (why the session ended, the manifest, the summary). Model calls go through
generator.calls (cache, budget, rate limits, transport retries); content retries live in
generator.worker.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from generator import __version__
from generator.archetype import Archetype
from generator.backends.base import Backend, BackendConfig, safe_url
from generator.backends.registry import speaks_batch
from generator.batch_ledger import manifest_section
from generator.batch_queue import BatchQueue, Deferred
from generator.calls import Budget, BudgetReached, CallStats, ModelCaller, ResponseCache
from generator.errors import ConfigError, PermanentError, TransientError
from generator.gates import Gatekeeper, GatePolicy, JudgeMode, load_reference_texts
from generator.gates.dedup import DedupIndex
from generator.plan import Task, iter_tasks
from generator.pricing import load_prices
from generator.progress import Progress
from generator.prompts import BriefStyle, template_versions
from generator.ratelimit import RatePacer
from generator.rundir import Manifest, ManifestArchetype, RunDir, ShardRef
from generator.runstatus import (
    RunStatus,
    budget_message,
    final_status,
    starved_status,
    submit_batches,
)
from generator.scheduler import Outcome, Scheduler
from generator.session import (
    Backends,
    build_gatekeeper,
    judge_passes,
    judge_policy,
    open_backends,
    price_of,
)
from generator.worker import Worker


@dataclass(frozen=True)
class RunOptions:
    out: Path
    n: int
    seed: int = 0
    backend: BackendConfig = field(default_factory=lambda: BackendConfig(provider="local"))
    concurrency: int = 8
    budget: float | None = None
    prices_file: Path | None = None
    max_reasks: int = 2
    max_transport_retries: int = 6
    # How many tasks one session may draw, as a multiple of N, before giving up on reaching N.
    attempts_factor: float = 3.0
    max_attempts: int | None = None  # tasks drawn in all, earlier sessions included (a hard cap)
    progress: bool | None = None  # None: a bar on a terminal, periodic lines otherwise
    judge: BackendConfig | None = None  # None: the writer's backend judges too
    judge_mode: JudgeMode | None = None  # None: enforce, or advisory for the embedded tiny model
    judge_escalate: BackendConfig | None = None  # the stronger judge for unsettled documents
    relax: frozenset[str] = frozenset()  # heuristic checks measured but not enforced
    dedup_against: tuple[Path, ...] = ()  # earlier runs or datasets to avoid repeating
    shard: tuple[int, int] | None = None  # (index, count): this process runs tasks index mod count
    batch: bool = False  # queue uncached calls for the provider's batch API instead of calling
    samples: int = 1  # ideas per call: groups of this many tasks share one idea call (n)
    brief: BriefStyle | None = None  # None: compact for the embedded local model, else full


def brief_style(options: RunOptions) -> BriefStyle:
    """The writer's brief: compact on the local backend (a small model on a CPU), else full."""
    if options.brief is not None:
        return options.brief
    return "compact" if options.backend.provider == "local" else "full"


@dataclass
class RunSummary:
    accepted: int
    target: int
    rejected: Counter[str]
    status: str
    cost_usd: float
    model_calls: int
    cache_hits: int
    message: str


class _Stop(Exception):
    """Stop the run now (a fatal provider error)."""


def check_options(options: RunOptions) -> None:
    """Refuse option combinations that cannot work, before anything is opened or paid for."""
    if options.samples > 1 and options.batch:
        raise ConfigError(
            "--samples-per-request does not work with --batch yet: drop one of the two"
        )
    if options.batch and not speaks_batch(options.backend):
        raise ConfigError("--batch needs --provider openai or anthropic")


@dataclass
class RunState:
    """Everything one generation session works with, built once by `prepare`."""

    options: RunOptions
    rundir: RunDir
    backends: Backends
    manifest: Manifest
    previous: Manifest | None
    policy: GatePolicy
    cache: ResponseCache
    budget: Budget
    stats: CallStats
    writer: ModelCaller
    judge: ModelCaller
    queue: BatchQueue | None
    worker: Worker
    scheduler: Scheduler
    progress: Progress
    status: RunStatus = field(default_factory=RunStatus)
    failed: Counter[str] = field(default_factory=Counter)  # tasks failed after retries, by kind
    interrupted: bool = False


async def generate(archetypes: Sequence[Archetype], options: RunOptions) -> RunSummary:
    """Run (or resume, or extend) a generation into `options.out`."""
    check_options(options)
    async with open_backends(
        options.backend, options.judge, options.judge_escalate, options.judge_mode
    ) as backends:
        with RunDir(options.out) as rundir:
            state = prepare(archetypes, options, rundir, backends)
            await drive(state)
            return await conclude(state)


def run(archetypes: Sequence[Archetype], options: RunOptions) -> RunSummary:
    """Synchronous entry point for the CLI."""
    return asyncio.run(generate(archetypes, options))


# ---------------------------------------------------------------------------------------------
# prepare


def prepare(
    archetypes: Sequence[Archetype], options: RunOptions, rundir: RunDir, backends: Backends
) -> RunState:
    """Check the run directory can take this session, then build its callers, gates, worker
    and scheduler."""
    writer_backend = backends.writer
    most = writer_backend.capabilities.samples_per_call
    if options.samples > 1 and most < options.samples:
        raise ConfigError(
            f"--samples-per-request {options.samples}: the {writer_backend.provider} backend "
            f"returns at most {most} answer(s) per call; drop the option "
            "or use an OpenAI-compatible server (--base-url)"
        )
    policy = judge_policy(backends.judge, options.judge_mode, options.relax, backends.escalate)
    manifest = _manifest_base(archetypes, options, backends, policy)
    previous = rundir.read_manifest()
    _check_compatible(previous, manifest, options.out)
    cache = ResponseCache(rundir)
    budget = Budget(cap=options.budget, spent=cache.cost)
    stats = CallStats()
    writer, judge, escalate = _callers(options, backends, cache, budget, stats)
    gatekeeper = _gatekeeper(rundir, policy, judge, options.dedup_against, escalate)
    worker = Worker(
        writer,
        gatekeeper,
        {a.id: a for a in archetypes},
        rundir,
        options.max_reasks,
        brief_style(options),
    )
    accepted = {record.id for record in rundir.records()}
    rejected = {line.task_id for line in rundir.reject_lines() if line is not None}
    scheduler = Scheduler(
        _task_stream(archetypes, options),
        options.n,
        accepted=accepted,
        rejected=rejected,
        max_draws=_max_draws(options, len(accepted) + len(rejected)),
    )
    progress = Progress(options.n, len(accepted), enabled=options.progress)
    progress.update(len(accepted), budget.spent, cache.tokens)
    queue = _batch_queue(options, rundir, writer, judge)
    return RunState(
        options, rundir, backends, manifest, previous, policy, cache, budget, stats,
        writer, judge, queue, worker, scheduler, progress,
    )  # fmt: skip


def _callers(
    options: RunOptions, backends: Backends, cache: ResponseCache, budget: Budget, stats: CallStats
) -> tuple[ModelCaller, ModelCaller, ModelCaller | None]:
    """The writer's, the judge's and the stronger judge's callers, sharing the cache, budget
    and statistics; the judge shares the writer's rate pacer when it is the same backend."""
    prices = load_prices(options.prices_file)
    retries = options.max_transport_retries
    pacer = RatePacer()

    def caller(config: BackendConfig, backend: Backend, pace: RatePacer | None) -> ModelCaller:
        price = price_of(prices, config, backend, options.budget)
        return ModelCaller(backend, cache, price, budget, stats, retries, pace)

    writer = caller(options.backend, backends.writer, pacer)
    judge_pacer = pacer if backends.judge is backends.writer else RatePacer()
    judge = caller(backends.judge_config, backends.judge, judge_pacer)
    escalate = None
    if backends.escalate is not None and backends.escalate_config is not None:
        escalate = caller(backends.escalate_config, backends.escalate, None)
    return writer, judge, escalate


def _gatekeeper(
    rundir: RunDir,
    policy: GatePolicy,
    judge: ModelCaller,
    references: Sequence[Path],
    escalate: ModelCaller | None = None,
) -> Gatekeeper:
    dedup = DedupIndex.from_texts((r.id, r.text) for r in rundir.records())
    for doc_id, text in load_reference_texts(references):
        dedup.add_reference(doc_id, text)
    return build_gatekeeper(policy, dedup, judge, escalate)


def _check_compatible(previous: Manifest | None, manifest: Manifest, out: Path) -> None:
    if previous is None:
        return
    for key in (
        "seed",
        "provider",
        "model",
        "archetype_ids",
        "template_versions",
        "samples_per_request",
        "brief",
    ):
        # Runs from before --samples-per-request existed had one idea per call (the default).
        known = key in previous.model_fields_set or key == "samples_per_request"
        old = getattr(previous, key) if known else None
        new = getattr(manifest, key)
        if old is not None and old != new:
            raise ConfigError(
                f"{out} holds a run with {key}={json.dumps(old)}, not {json.dumps(new)}; "
                "rerun with the same options to continue it, or choose another --out"
            )


def _manifest_base(
    archetypes: Sequence[Archetype], options: RunOptions, backends: Backends, policy: GatePolicy
) -> Manifest:
    ordered = sorted(archetypes, key=lambda a: a.id)
    return Manifest(
        tool=f"archetype-corpus {__version__}",
        archetype_ids=[a.id for a in ordered],
        archetypes=[
            ManifestArchetype(id=a.id, version=a.version, spec_hash=a.spec_hash, source=a.source)
            for a in ordered
        ],
        seed=options.seed,
        n=options.n,
        provider=backends.writer.provider,
        model=backends.writer.model,
        base_url=safe_url(options.backend.base_url),
        base_urls=[url for u in options.backend.base_urls if (url := safe_url(u))],
        shard=ShardRef(index=options.shard[0], count=options.shard[1]) if options.shard else None,
        samples_per_request=options.samples,
        brief=brief_style(options),
        template_versions=template_versions(),
        concurrency=options.concurrency,
        budget_usd=options.budget,
        gates=policy.describe(),
    )


def _max_draws(options: RunOptions, attempted_before: int) -> int:
    """Tasks this session may draw: --max-attempts less what earlier sessions drew, or else a
    multiple of N (rejects are replaced, but not forever)."""
    if options.max_attempts is not None:
        return max(options.max_attempts - attempted_before, 0)
    return int(options.n * options.attempts_factor) + 10


def _task_stream(archetypes: Sequence[Archetype], options: RunOptions) -> Iterator[Task]:
    """The plan stream, or this shard's share of it: shards split by task index, so K machines
    together run exactly the plan one machine would, replacements for rejects included."""
    stream = iter_tasks(archetypes, options.seed, options.samples)
    if options.shard is None:
        return stream
    index, count = options.shard
    # By group: the tasks sharing an idea call stay on one machine, which pays for it once.
    return (task for task in stream if task.group % count == index)


def _batch_queue(
    options: RunOptions, rundir: RunDir, writer: ModelCaller, judge: ModelCaller
) -> BatchQueue | None:
    """In batch mode the writer (and the judge, when it is the same backend) queue their
    uncached calls; a judge on another backend is still called directly."""
    if not options.batch:
        return None
    queue = BatchQueue(rundir, writer.backend)
    writer.batch_queue = queue
    if judge.backend is writer.backend:
        judge.batch_queue = queue
    return queue


# ---------------------------------------------------------------------------------------------
# drive


async def drive(state: RunState) -> None:
    """Run the workers until the scheduler has nothing more to hand out, a fatal error stops
    them, or SIGINT/SIGTERM interrupts them (then `state.interrupted` is set)."""
    write_manifest(state)
    loop = asyncio.get_running_loop()
    workers = [asyncio.create_task(_work(state)) for _ in range(max(state.options.concurrency, 1))]

    def on_signal() -> None:
        state.interrupted = True
        for w in workers:
            w.cancel()

    installed = _install_signal_handlers(loop, on_signal)
    heartbeat = asyncio.create_task(state.progress.heartbeat())
    try:
        results = await asyncio.gather(*workers, return_exceptions=True)
    finally:
        heartbeat.cancel()
        _remove_signal_handlers(loop, installed)
        state.progress.close()
    for result in results:
        if isinstance(result, BaseException) and not isinstance(
            result, _Stop | asyncio.CancelledError
        ):
            state.status = RunStatus("failed")
            write_manifest(state)
            raise result


async def _work(state: RunState) -> None:
    """One worker: take tasks until there are none; a fatal error stops the whole run."""
    scheduler = state.scheduler
    while (task := await scheduler.next()) is not None:
        outcome: Outcome | None = None
        deferred = False
        try:
            outcome = await state.worker.process(task)
        except BudgetReached as reached:
            message = budget_message(reached, state.budget, state.options.budget)
            state.status = RunStatus("budget", message)
            raise _Stop from None
        except Deferred:
            deferred = True
        except TransientError as exc:
            state.failed[exc.kind] += 1
        except PermanentError as exc:
            if exc.fatal:
                state.status = RunStatus("failed", str(exc))
                raise _Stop from None
            state.failed["rejected-by-provider"] += 1
        finally:
            await scheduler.finish(outcome, task, deferred)
        state.progress.update(len(scheduler.accepted), state.budget.spent, state.cache.tokens)


def _install_signal_handlers(
    loop: asyncio.AbstractEventLoop, handler: Callable[[], None]
) -> list[int]:
    installed: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-main thread
            pass
    return installed


def _remove_signal_handlers(loop: asyncio.AbstractEventLoop, installed: list[int]) -> None:
    for sig in installed:
        loop.remove_signal_handler(sig)


# ---------------------------------------------------------------------------------------------
# conclude


async def conclude(state: RunState) -> RunSummary:
    """Decide why the session ended (submitting queued batches), write the final manifest and
    summarise the session."""
    options, scheduler, status = state.options, state.scheduler, state.status
    done = len(scheduler.accepted)
    if state.interrupted:
        state.status = RunStatus(
            "interrupted",
            f"interrupted: {done} of {options.n} documents kept in {options.out}; "
            "rerun the same command to continue",
        )
    elif status.value == "running" and scheduler.starved is not None:
        state.status = starved_status(scheduler.starved, options.out)
    elif state.queue is not None and (state.queue.pending() or state.queue.waiting()):
        batches = await submit_batches(state.queue, options.out)
        if status.value == "budget":
            # What fitted under the budget is submitted (its worst case is reserved); the run
            # still ended at the budget, and says so.
            status.message = f"{status.message}; {batches.message}"
        else:
            state.status = batches
    elif status.value == "running":
        rejected = state.rundir.reject_reasons()
        state.status = final_status(
            done, options.n, options.out, state.failed, scheduler.draws, rejected
        )
    write_manifest(state)
    return RunSummary(
        accepted=done,
        target=options.n,
        rejected=state.rundir.reject_reasons(),
        status=state.status.value,
        cost_usd=state.budget.spent,
        model_calls=state.stats.model_calls,
        cache_hits=state.stats.cache_hits,
        message=state.status.message,
    )


def write_manifest(state: RunState) -> None:
    """The manifest as the session stands: its options, status, counts, usage and cost."""
    cache, stats, manifest, previous = state.cache, state.stats, state.manifest, state.previous
    rejected = state.rundir.reject_reasons()
    previous_faults = Counter(previous.faults if previous else {})
    previous_samples = Counter((previous.shared_idea_answers if previous else None) or {})
    writer = state.backends.writer
    update = {
        "status": state.status.value,
        "counts": {
            "accepted": len(state.scheduler.accepted),
            "target": state.options.n,
            "rejected": sum(rejected.values()),
            "rejected_by_reason": dict(sorted(rejected.items())),
            "failed_this_session": dict(state.failed),
        },
        "usage": _usage_totals(cache),
        "cost_usd": round(state.budget.spent, 6),
        # What the prompt cache and the batch discount saved, against the full rates.
        "cost_saved_usd": round(max(cache.list_cost - cache.cost, 0.0), 6),
        "price_known": state.writer.price is not None and state.judge.price is not None,
        "faults": dict(sorted((previous_faults + stats.faults).items())),
        "judge_passes": judge_passes(cache, state.policy),
        "shared_idea_answers": (
            dict(sorted((previous_samples + stats.samples).items()))
            if state.options.samples > 1
            else None
        ),
        "endpoints": writer.endpoints(),
        "batch": manifest_section(state.rundir),  # the run's provider batches and their results
        "calls_this_session": {
            "model_calls": stats.model_calls,
            "cache_hits": stats.cache_hits,
            "transport_retries": stats.retries,
        },
    }
    for key, value in update.items():
        setattr(manifest, key, value)  # marks the key set, so it is written even when None
    state.rundir.write_manifest(manifest)


def _usage_totals(cache: ResponseCache) -> dict[str, int]:
    totals = Counter[str]()
    for c in cache.entries.values():
        totals["input_tokens"] += c.input_tokens
        totals["output_tokens"] += c.output_tokens
        totals["cached_input_tokens"] += c.cached_input_tokens
        totals["cache_write_5m_tokens"] += c.cache_write_5m_tokens
        totals["cache_write_1h_tokens"] += c.cache_write_1h_tokens
        totals["completions"] += 1
    return dict(totals)
