"""Wires the pipeline: plan stream -> prompts -> backends -> records -> gates -> run directory.

Concurrency is a pool of worker coroutines fed by a scheduler that walks the plan stream until N
documents are accepted (counting earlier sessions). Model calls go through generator.calls
(cache, budget, rate limits, transport retries); content retries (re-asking for a parseable idea,
more room for a cut-off document, one critique-and-rewrite) live in `_Worker`.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import __version__
from generator.backends.base import (
    Backend,
    BackendConfig,
    Completion,
    PermanentError,
    TransientError,
    safe_url,
)
from generator.backends.fleet import FleetBackend
from generator.batch import BatchQueue, Deferred, manifest_section
from generator.calls import Budget, BudgetReached, CallStats, ModelCaller, ResponseCache
from generator.errors import ConfigError
from generator.gates import (
    Gatekeeper,
    GatePolicy,
    JudgeMode,
    Review,
    load_reference_texts,
)
from generator.gates.dedup import DedupIndex
from generator.gates.heuristics import CHECKS as RELAXABLE
from generator.plan import Task, iter_tasks
from generator.pricing import Price, load_prices
from generator.progress import Progress
from generator.prompts import (
    BriefStyle,
    Idea,
    IdeaParseError,
    Request,
    idea_request,
    parse_idea,
    reask_request,
    revise_request,
    template_versions,
    write_request,
)
from generator.ratelimit import RatePacer
from generator.records import Record, Usage, clean_document, make_record, make_reject
from generator.rundir import RECORDS, REJECTS, RunDir
from generator.session import build_gatekeeper, judge_passes, judge_policy, open_backend
from generator.spec import Archetype


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


# ---------------------------------------------------------------------------------------------
# One task: idea -> write -> record -> gates


@dataclass
class _Outcome:
    task: Task
    accepted: bool
    reason: str = ""
    gate: str = ""  # the step or gate that rejected it


# A run the gates starve stops early instead of paying for the rest: when the first
# STARVE_AFTER attempts of a session kept nothing and at least STARVE_SHARE of them were rejected
# for one reason. Nothing kept in 50 puts the yield below 6% (the rule of three, 95%), too low
# to reach N within the attempt cap (3N+10); one dominant reason means a systematic cause (a
# judge that does not follow the answer schema, length targets the writer cannot meet) that
# more attempts will not fix. Mixed reasons are left to the attempt cap.
STARVE_AFTER = 50
STARVE_SHARE = 0.9


@dataclass(frozen=True)
class Starvation:
    reason: str
    gate: str
    count: int
    attempts: int


def starvation(outcomes: Sequence[_Outcome]) -> Starvation | None:
    """Whether these first attempts of a session starve the run (see STARVE_AFTER)."""
    if len(outcomes) < STARVE_AFTER or any(o.accepted for o in outcomes):
        return None
    (reason, gate), count = Counter((o.reason, o.gate) for o in outcomes).most_common(1)[0]
    if count < STARVE_SHARE * len(outcomes):
        return None
    return Starvation(reason, gate, count, len(outcomes))


_WHY = {
    "truncated": "the model hit the token limit (twice, with 1.5x more room the second time, "
    "unless the brief was compact)",
    "empty": "the model returned an empty document",
}


class _Worker:
    def __init__(
        self,
        writer: ModelCaller,
        gatekeeper: Gatekeeper,
        archetypes: dict[str, Archetype],
        rundir: RunDir,
        max_reasks: int,
        style: BriefStyle,
    ):
        self.writer = writer
        self.gatekeeper = gatekeeper
        self.archetypes = archetypes
        self.rundir = rundir
        self.max_reasks = max_reasks
        self.style = style

    async def process(self, task: Task) -> _Outcome:
        archetype = self.archetypes[task.archetype_id]
        calls: list[Completion] = []
        idea = await self._idea(task, archetype, calls)
        if idea is None:
            return self._reject(
                task, "idea", "idea-unparseable", f"no usable idea after {self.max_reasks} re-asks"
            )
        request = write_request(task, archetype, idea, self.style)
        completion = await self._complete_document(request, calls)
        if isinstance(completion, str):
            return self._reject(task, "write", completion, _WHY[completion], calls[-1].text)
        record = self._record(task, idea, completion, request, calls, archetype)
        review = await self.gatekeeper.review(record, archetype, task.names)
        if review.fixable:
            # One critique-and-rewrite, then judged again from scratch.
            rewrite = revise_request(
                task, archetype, review.record, review.revision_advice, self.style
            )
            revised = await self._complete_document(rewrite, calls)
            if isinstance(revised, Completion):
                record = self._record(task, idea, revised, rewrite, calls, archetype).model_copy(
                    update={"revised": True}
                )
                review = await self.gatekeeper.review(record, archetype, task.names)
        return self._keep_or_reject(task, review)

    def _keep_or_reject(self, task: Task, review: Review) -> _Outcome:
        if review.passed:
            # Checked again with no await in between, so two concurrent near-twins cannot both pass.
            late = self.gatekeeper.dedup.check(
                review.record.id,
                review.record.text,
                allowed_names=Gatekeeper.allowed_names(review.record, task.names),
            )
            if late.passed:
                self.rundir.append(RECORDS, review.record.model_dump_json())
                self.gatekeeper.keep(review.record)
                return _Outcome(task, accepted=True)
            review.failures.extend(late.failures)
        first = review.failures[0]
        detail = "; ".join(f"{f.reason}: {f.detail}" for f in review.failures)
        return self._reject(task, first.gate, first.reason, detail, review.record.text)

    async def _complete_document(
        self, request: Request, calls: list[Completion]
    ) -> Completion | str:
        """The document, or why there is none. Policy for cut-off documents: one retry with 1.5x
        the room; a document cut off twice is never kept. The compact style (a small local
        model) gets no retry: SmolLM2 ran out of room again in most retries measured (it does
        not stop on its own), each costing half a minute of CPU."""
        completion = await self._counted(request, calls)
        if completion.finish_reason == "length" and self.style == "full":
            longer = request.model_copy(update={"max_tokens": int(request.max_tokens * 1.5)})
            completion = await self._counted(longer, calls)
        if completion.finish_reason == "length":
            return "truncated"
        if not clean_document(completion.text):
            return "empty"
        return completion

    def _record(
        self,
        task: Task,
        idea: Idea,
        completion: Completion,
        request: Request,
        calls: list[Completion],
        archetype: Archetype,
    ) -> Record:
        usage = Usage(
            input_tokens=sum(c.input_tokens for c in calls),
            output_tokens=sum(c.output_tokens for c in calls),
            cached_input_tokens=sum(c.cached_input_tokens for c in calls),
            model_calls=len(calls),
        )
        return make_record(
            task,
            idea,
            completion,
            language=archetype.targets.language,
            provider=self.writer.backend.provider,
            template_version=request.template_version,
            usage=usage,
        )

    async def _counted(self, request: Request, calls: list[Completion]) -> Completion:
        completion = await self.writer.call(request)
        calls.append(completion)
        return completion

    async def _idea(self, task: Task, archetype: Archetype, calls: list[Completion]) -> Idea | None:
        request = idea_request(task, archetype, style=self.style)
        if request.samples > 1:
            shared = await self.writer.call_shared(request, task.sample)
            if shared is not None:
                calls.append(shared)
                try:
                    return parse_idea(shared.text)
                except IdeaParseError:
                    pass  # asked again below, on its own, like any other unusable idea
            request = idea_request(task, archetype, shared=False, style=self.style)
        for _ in range(self.max_reasks + 1):
            completion = await self._counted(request, calls)
            try:
                return parse_idea(completion.text)
            except IdeaParseError as exc:
                request = reask_request(request, completion.text, str(exc))
        return None

    def _reject(self, task: Task, step: str, reason: str, detail: str, text: str = "") -> _Outcome:
        self.rundir.append(
            REJECTS, make_reject(task, step, reason, detail, text).model_dump(mode="json")
        )
        return _Outcome(task, accepted=False, reason=reason, gate=step)


# ---------------------------------------------------------------------------------------------
# Scheduling


class _Scheduler:
    """Hands out tasks from the plan stream until N are accepted (counting earlier sessions)."""

    def __init__(
        self,
        stream: Iterator[Task],
        target: int,
        accepted: set[str],
        rejected: set[str],
        max_draws: int,
    ):
        self.stream = stream
        self.target = target
        self.accepted = accepted
        self.rejected = rejected
        self.max_draws = max_draws
        self.draws = 0
        self.inflight = 0
        self.deferred = 0
        self.changed = asyncio.Condition()
        self.exhausted = False
        self.first: list[_Outcome] = []  # this session's first STARVE_AFTER outcomes
        self.starved: Starvation | None = None

    async def next(self) -> Task | None:
        async with self.changed:
            while True:
                if self.starved is not None:
                    return None  # tasks in flight finish; no new one is drawn
                if len(self.accepted) + self.inflight + self.deferred < self.target:
                    task = self._draw()
                    if task is None:
                        return None
                    self.inflight += 1
                    return task
                if self.inflight == 0:
                    return None
                await self.changed.wait()

    def _draw(self) -> Task | None:
        for task in self.stream:
            if task.id in self.accepted or task.id in self.rejected:
                continue
            if self.draws >= self.max_draws:
                self.exhausted = True
                return None
            self.draws += 1
            return task
        return None

    async def finish(self, outcome: _Outcome | None, task: Task, deferred: bool = False) -> None:
        async with self.changed:
            self.inflight -= 1
            # A task waiting on a batch answer still counts toward N: it will finish next run.
            self.deferred += deferred
            if outcome is not None:
                (self.accepted if outcome.accepted else self.rejected).add(task.id)
                if len(self.first) < STARVE_AFTER:
                    self.first.append(outcome)
                    self.starved = starvation(self.first)
            self.changed.notify_all()


# ---------------------------------------------------------------------------------------------
# The run


def _check_compatible(previous: dict[str, Any] | None, manifest: dict[str, Any], out: Path) -> None:
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
        # Runs from before --samples-per-request existed had one idea per call.
        old = previous.get(key, 1 if key == "samples_per_request" else None)
        new = manifest.get(key)
        if old is not None and old != new:
            raise ConfigError(
                f"{out} holds a run with {key}={json.dumps(old)}, not {json.dumps(new)}; "
                "rerun with the same options to continue it, or choose another --out"
            )


def _check_samples(options: RunOptions, backend: Backend) -> None:
    if options.samples == 1:
        return
    if backend.max_samples < options.samples:
        raise ConfigError(
            f"--samples-per-request {options.samples}: the {backend.provider} backend returns "
            f"at most {backend.max_samples} answer(s) per call; drop the option or use an "
            "OpenAI-compatible server (--base-url)"
        )
    if options.batch:
        raise ConfigError(
            "--samples-per-request does not work with --batch yet: drop one of the two"
        )


def _judge_policy(
    options: RunOptions, judge_backend: Backend, escalate: Backend | None = None
) -> GatePolicy:
    return judge_policy(judge_backend, options.judge_mode, options.relax, escalate)


async def _open_backend(config: BackendConfig) -> Backend:
    return await open_backend(config)


def _price(config: BackendConfig, backend: Backend, options: RunOptions) -> Price | None:
    price = load_prices(options.prices_file).lookup(
        backend.model, backend.provider, config.self_hosted
    )
    if options.budget is not None and price is None:
        raise ConfigError(
            f"--budget needs a price for model '{backend.model}': add it with --prices FILE"
        )
    return price


def _gatekeeper(
    rundir: RunDir,
    policy: GatePolicy,
    judge: ModelCaller,
    references: Sequence[Path],
    escalate: ModelCaller | None = None,
) -> Gatekeeper:
    dedup = DedupIndex.from_texts((r["id"], r["text"]) for r in rundir.read_jsonl(RECORDS))
    for doc_id, text in load_reference_texts(references):
        dedup.add_reference(doc_id, text)
    return build_gatekeeper(policy, dedup, judge, escalate)


async def generate(archetypes: Sequence[Archetype], options: RunOptions) -> RunSummary:
    """Run (or resume, or extend) a generation into `options.out`."""
    writer_backend = await _open_backend(options.backend)
    judge_config = options.judge or options.backend
    judge_backend = (
        writer_backend if judge_config == options.backend else await _open_backend(judge_config)
    )
    escalate_backend = (
        await _open_backend(options.judge_escalate)
        if options.judge_escalate is not None and options.judge_mode != "off"
        else None
    )
    backends = {id(b): b for b in (writer_backend, judge_backend, escalate_backend) if b}.values()
    try:
        with RunDir(options.out) as rundir:
            return await _generate(
                archetypes,
                options,
                rundir,
                writer_backend,
                judge_backend,
                judge_config,
                escalate_backend,
            )
    finally:
        for backend in backends:
            await backend.aclose()


async def _generate(
    archetypes: Sequence[Archetype],
    options: RunOptions,
    rundir: RunDir,
    writer_backend: Backend,
    judge_backend: Backend,
    judge_config: BackendConfig,
    escalate_backend: Backend | None = None,
) -> RunSummary:
    _check_samples(options, writer_backend)
    policy = _judge_policy(options, judge_backend, escalate_backend)
    manifest = _manifest_base(archetypes, options, writer_backend, policy)
    previous = rundir.read_manifest()
    _check_compatible(previous, manifest, options.out)
    previous_faults = Counter((previous or {}).get("faults", {}))
    previous_samples = Counter((previous or {}).get("shared_idea_answers") or {})

    cache = ResponseCache(rundir)
    budget = Budget(cap=options.budget, spent=cache.cost)
    stats = CallStats()
    pacer = RatePacer()
    writer = ModelCaller(
        writer_backend,
        cache,
        _price(options.backend, writer_backend, options),
        budget,
        stats,
        options.max_transport_retries,
        pacer,
    )
    judge = ModelCaller(
        judge_backend,
        cache,
        _price(judge_config, judge_backend, options),
        budget,
        stats,
        options.max_transport_retries,
        pacer if judge_backend is writer_backend else RatePacer(),
    )
    escalate = (
        ModelCaller(
            escalate_backend,
            cache,
            _price(options.judge_escalate, escalate_backend, options),
            budget,
            stats,
            options.max_transport_retries,
        )
        if escalate_backend is not None and options.judge_escalate is not None
        else None
    )
    gatekeeper = _gatekeeper(rundir, policy, judge, options.dedup_against, escalate)
    queue = _batch_queue(options, rundir, writer, judge)
    worker = _Worker(
        writer,
        gatekeeper,
        {a.id: a for a in archetypes},
        rundir,
        options.max_reasks,
        brief_style(options),
    )
    accepted = {line["id"] for line in rundir.read_jsonl(RECORDS)}
    rejected = {line["task_id"] for line in rundir.read_jsonl(REJECTS)}
    scheduler = _Scheduler(
        _task_stream(archetypes, options),
        options.n,
        accepted=accepted,
        rejected=rejected,
        max_draws=_max_draws(options, len(accepted) + len(rejected)),
    )
    progress = Progress(options.n, len(scheduler.accepted), enabled=options.progress)
    progress.update(len(scheduler.accepted), budget.spent, cache.tokens)
    status = {"value": "running", "message": ""}
    failed: Counter[str] = Counter()

    def write_manifest(state: str) -> None:
        rejected_by_reason = Counter(r["reason"] for r in rundir.read_jsonl(REJECTS))
        manifest.update(
            status=state,
            counts={
                "accepted": len(scheduler.accepted),
                "target": options.n,
                "rejected": sum(rejected_by_reason.values()),
                "rejected_by_reason": dict(sorted(rejected_by_reason.items())),
                "failed_this_session": dict(failed),
            },
            usage=_usage_totals(cache.entries.values()),
            cost_usd=round(budget.spent, 6),
            # What the prompt cache and the batch discount saved, against the full rates.
            cost_saved_usd=round(max(cache.list_cost - cache.cost, 0.0), 6),
            price_known=writer.price is not None and judge.price is not None,
            faults=dict(sorted((previous_faults + stats.faults).items())),
            judge_passes=judge_passes(cache, policy),
            shared_idea_answers=(
                dict(sorted((previous_samples + stats.samples).items()))
                if options.samples > 1
                else None
            ),
            endpoints=writer_backend.report() if isinstance(writer_backend, FleetBackend) else None,
            batch=manifest_section(rundir),  # the run's provider batches and what they returned
            calls_this_session={
                "model_calls": stats.model_calls,
                "cache_hits": stats.cache_hits,
                "transport_retries": stats.retries,
            },
        )
        rundir.write_manifest(manifest)

    write_manifest("running")

    async def work() -> None:
        while (task := await scheduler.next()) is not None:
            outcome: _Outcome | None = None
            deferred = False
            try:
                outcome = await worker.process(task)
            except BudgetReached as reached:
                status.update(value="budget", message=_budget_message(reached, budget, options))
                raise _Stop from None
            except Deferred:
                deferred = True
            except TransientError as exc:
                failed[exc.kind] += 1
            except PermanentError as exc:
                if exc.fatal:
                    status.update(value="failed", message=str(exc))
                    raise _Stop from None
                failed["rejected-by-provider"] += 1
            finally:
                await scheduler.finish(outcome, task, deferred)
            progress.update(len(scheduler.accepted), budget.spent, cache.tokens)

    loop = asyncio.get_running_loop()
    workers = [asyncio.create_task(work()) for _ in range(max(options.concurrency, 1))]
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        interrupted = True
        for w in workers:
            w.cancel()

    installed = _install_signal_handlers(loop, on_signal)
    heartbeat = asyncio.create_task(progress.heartbeat())
    try:
        results = await asyncio.gather(*workers, return_exceptions=True)
    finally:
        heartbeat.cancel()
        _remove_signal_handlers(loop, installed)
        progress.close()
    for result in results:
        if isinstance(result, BaseException) and not isinstance(
            result, _Stop | asyncio.CancelledError
        ):
            write_manifest("failed")
            raise result

    done = len(scheduler.accepted)
    if interrupted:
        status.update(
            value="interrupted",
            message=(
                f"interrupted: {done} of {options.n} documents kept in {options.out}; "
                "rerun the same command to continue"
            ),
        )
    elif status["value"] == "running" and scheduler.starved is not None:
        status.update(_starved_status(scheduler.starved, options))
    elif queue is not None and (queue.pending() or queue.waiting()):
        batches = await _submit_batches(queue, options)
        if status["value"] == "budget":
            # What fitted under the budget is submitted (its worst case is reserved); the run
            # still ended at the budget, and says so.
            status.update(message=f"{status['message']}; {batches['message']}")
        else:
            status.update(batches)
    elif status["value"] == "running":
        rejected_by_reason = Counter(r["reason"] for r in rundir.read_jsonl(REJECTS))
        status.update(_final_status(done, options, failed, scheduler.draws, rejected_by_reason))
    write_manifest(status["value"])
    return RunSummary(
        accepted=done,
        target=options.n,
        rejected=Counter(r["reason"] for r in rundir.read_jsonl(REJECTS)),
        status=status["value"],
        cost_usd=budget.spent,
        model_calls=stats.model_calls,
        cache_hits=stats.cache_hits,
        message=status["message"],
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


def _budget_message(reached: BudgetReached, budget: Budget, options: RunOptions) -> str:
    held = budget.reserved
    queued = f", ${held:.4f} more held for calls in flight or queued" if held > 0 else ""
    return (
        f"stopped at the budget: the next call could cost up to ${reached.worst_case:.4f}, "
        f"which could take spending past ${options.budget:.2f} (spent ${budget.spent:.4f}{queued}); "
        "raise --budget and rerun to continue"
    )


async def _submit_batches(queue: BatchQueue, options: RunOptions) -> dict[str, str]:
    waiting = queue.waiting()
    created = await queue.submit()
    requests = sum(info.requests for info in created)
    parts = []
    if created:
        parts.append(f"submitted {len(created)} batch(es) with {requests} requests")
    if waiting:
        parts.append(f"{waiting} requests are waiting in batches submitted earlier")
    return {
        "value": "batch-pending",
        "message": (
            f"{'; '.join(parts)}; follow them with `archetypes batch status {options.out}`, fetch the "
            f"results with `archetypes batch collect {options.out}`, then rerun this command to take "
            "every document one step further"
        ),
    }


def _final_status(
    done: int, options: RunOptions, failed: Counter[str], draws: int, rejected: Counter[str]
) -> dict[str, str]:
    if done >= options.n:
        return {"value": "complete", "message": f"done: {done} documents in {options.out}"}
    if failed:
        kinds = ", ".join(f"{k} {v}" for k, v in failed.items())
        return {
            "value": "incomplete",
            "message": (
                f"incomplete: {done} of {options.n} documents; {sum(failed.values())} tasks failed after "
                f"retries ({kinds}); rerun the same command to retry them"
            ),
        }
    top = ""
    if rejected:
        reason, count = rejected.most_common(1)[0]
        top = (
            f"; most rejections were {reason} ({count} of {rejected.total()}): read their "
            f"details in {options.out / REJECTS}"
        )
    return {
        "value": "incomplete",
        "message": (
            f"incomplete: {done} of {options.n} documents after {draws} attempts this session"
            f"{top}; rerun to try more tasks (--max-attempts raises the cap)"
        ),
    }


_JUDGE_VERDICT = (
    "the judge fails nearly every document: read its critiques, then try a stronger writer "
    "(--model) or check that the spec's traits can show in its genres"
)
_STARVE_ADVICE = {
    "judge-unparseable": (
        "the judge's model may not follow the answer schema (e.g. it names trait ids the spec "
        "does not have): try a stronger --judge-model, or --judge advisory to record its "
        "verdicts without enforcing them"
    ),
    "judge-evidence-not-found": (
        "the judge quotes evidence that is not in the documents: try a stronger --judge-model"
    ),
    "idea-unparseable": (
        "the writer's model does not answer the idea step with the JSON asked for: try a "
        "stronger --model, or a server that supports structured output"
    ),
    "truncated": (
        "documents stop mid-sentence or at the token limit: try a stronger --model, or "
        "--relax truncated to measure it without enforcing it"
    ),
    "empty": "the model returns empty documents: check the server and --model",
    "length": (
        "the writer misses the spec's length targets: widen targets.min_words/max_words in the "
        "spec, or --relax length to measure it without enforcing it"
    ),
    "trope": (
        "documents name rogue-AI figures or takeover phrases: try a stronger --model, and check "
        "that the spec's tropes_to_avoid quotes only names and phrases no document needs"
    ),
    "near-duplicate": (
        "the writer repeats itself: add settings, situations or genres to the spec, or try a "
        "stronger --model"
    ),
}


def _starve_advice(reason: str, gate: str) -> str:
    if reason in _STARVE_ADVICE:
        advice = _STARVE_ADVICE[reason]
    elif reason in ("exact-duplicate", "overused-opening", "overused-name"):
        advice = _STARVE_ADVICE["near-duplicate"]
    elif gate == "judge" or reason.startswith(("judge-", "backfire-")):
        advice = _JUDGE_VERDICT
    elif reason in RELAXABLE:
        advice = (
            f"try a stronger --model, or --relax {reason} to measure it without enforcing it "
            "(the manifest and the dataset card say so)"
        )
    else:
        advice = "try a stronger --model"
    return advice


def _starved_status(starved: Starvation, options: RunOptions) -> dict[str, str]:
    rejects = options.out / REJECTS
    where = f"the {starved.gate} {'step' if starved.gate in ('idea', 'write') else 'gate'}"
    return {
        "value": "starved",
        "message": (
            f"starved: stopped early, the first {starved.attempts} attempts kept nothing and "
            f"{starved.count} were rejected as {starved.reason} by {where}; "
            f"{_starve_advice(starved.reason, starved.gate)}; details in {rejects}"
        ),
    }


def _usage_totals(completions: Any) -> dict[str, int]:
    totals = Counter[str]()
    for c in completions:
        totals["input_tokens"] += c.input_tokens
        totals["output_tokens"] += c.output_tokens
        totals["cached_input_tokens"] += c.cached_input_tokens
        totals["cache_write_5m_tokens"] += c.cache_write_5m_tokens
        totals["cache_write_1h_tokens"] += c.cache_write_1h_tokens
        totals["completions"] += 1
    return dict(totals)


def _manifest_base(
    archetypes: Sequence[Archetype], options: RunOptions, backend: Backend, policy: GatePolicy
) -> dict[str, Any]:
    return {
        "tool": f"archetype-corpus {__version__}",
        "archetype_ids": sorted(a.id for a in archetypes),
        "archetypes": [
            {"id": a.id, "version": a.version, "spec_hash": a.spec_hash, "source": a.source}
            for a in sorted(archetypes, key=lambda a: a.id)
        ],
        "seed": options.seed,
        "n": options.n,
        "provider": backend.provider,
        "model": backend.model,
        "base_url": safe_url(options.backend.base_url),
        "base_urls": [safe_url(u) for u in options.backend.base_urls],
        "shard": {"index": options.shard[0], "count": options.shard[1]} if options.shard else None,
        "samples_per_request": options.samples,
        "brief": brief_style(options),
        "template_versions": template_versions(),
        "concurrency": options.concurrency,
        "budget_usd": options.budget,
        "gates": policy.describe(),
    }


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


def run(archetypes: Sequence[Archetype], options: RunOptions) -> RunSummary:
    """Synchronous entry point for the CLI."""
    return asyncio.run(generate(archetypes, options))
