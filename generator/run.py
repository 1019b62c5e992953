"""Wires the pipeline: plan stream -> prompts -> backend -> records -> gates -> run directory.

Concurrency is a pool of worker coroutines. Every model call goes through `_Caller`, which owns
the persistent cache (a rerun pays for nothing twice), the budget (no call starts that could take
spending past the cap), the shared rate-limit pause and the transport retries. Content retries
(re-asking for a parseable idea, a longer budget for a cut-off document) live in `_Worker`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from generator import __version__
from generator.backends.base import (
    Backend,
    BackendConfig,
    Completion,
    PermanentError,
    TransientError,
    create_backend,
)
from generator.errors import ConfigError
from generator.gates import run_gates
from generator.plan import Task, iter_tasks
from generator.pricing import Price, load_prices
from generator.progress import Progress
from generator.prompts import (
    Idea,
    IdeaParseError,
    Request,
    idea_request,
    parse_idea,
    reask_request,
    template_versions,
    write_request,
)
from generator.records import Usage, make_record, make_reject
from generator.rundir import CACHE, RECORDS, REJECTS, RunDir
from generator.spec import Archetype
from generator.tokens import count_tokens


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
    # How many tasks may be drawn in all, as a multiple of N, before giving up on reaching N.
    attempts_factor: float = 3.0
    progress: bool | None = None  # None: a bar on a terminal, periodic lines otherwise


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


class BudgetReached(Exception):
    """The next call could take spending past --budget."""


class _Stop(Exception):
    """Stop the run now (a fatal provider error)."""


# ---------------------------------------------------------------------------------------------
# Model calls: cache, budget, rate limits, transport retries


@dataclass
class _Stats:
    model_calls: int = 0
    cache_hits: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    retries: int = 0


class _RateGate:
    """A shared pause: a 429 with retry-after, or an exhausted allowance, holds every caller."""

    def __init__(self) -> None:
        self.resume_at = 0.0

    def pause(self, seconds: float) -> None:
        self.resume_at = max(self.resume_at, time.monotonic() + min(seconds, 300.0))

    async def wait(self) -> None:
        while (delay := self.resume_at - time.monotonic()) > 0:
            await asyncio.sleep(delay)


class _Caller:
    def __init__(
        self,
        backend: Backend,
        rundir: RunDir,
        price: Price | None,
        budget: float | None,
        max_retries: int,
        stats: _Stats,
    ):
        self.backend = backend
        self.rundir = rundir
        self.price = price
        self.budget = budget
        self.max_retries = max_retries
        self.stats = stats
        self.gate = _RateGate()
        self.cache: dict[str, Completion] = {}
        self.spent = 0.0
        self.reserved = 0.0
        self.tokens = 0
        for line in rundir.read_jsonl(CACHE):
            completion = Completion.model_validate(line["completion"])
            self.cache[line["key"]] = completion
            self.spent += self._cost(completion)
            self.tokens += completion.input_tokens + completion.output_tokens

    def _cost(self, c: Completion) -> float:
        if self.price is None:
            return 0.0
        return self.price.cost(c.input_tokens, c.output_tokens, c.cached_input_tokens)

    def key(self, request: Request) -> str:
        identity = [
            request.task_id,
            request.step,
            self.backend.provider,
            self.backend.model,
            request.fingerprint(),
        ]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]

    def _worst_case(self, request: Request) -> float:
        if self.price is None:
            return 0.0
        prompt = sum(count_tokens(m.content) + 4 for m in request.messages)
        return self.price.cost(prompt, request.max_tokens)

    async def call(self, request: Request) -> Completion:
        key = self.key(request)
        if key in self.cache:
            self.stats.cache_hits += 1
            return self.cache[key]
        worst = self._worst_case(request)
        if self.budget is not None and self.spent + self.reserved + worst > self.budget:
            raise BudgetReached
        self.reserved += worst
        try:
            completion = await self._call_with_retries(request)
        finally:
            self.reserved -= worst
        self.spent += self._cost(completion)
        self.tokens += completion.input_tokens + completion.output_tokens
        self.cache[key] = completion
        self.rundir.append(
            CACHE,
            {
                "key": key,
                "task_id": request.task_id,
                "step": request.step,
                "completion": completion.model_dump(mode="json"),
            },
        )
        return completion

    async def _call_with_retries(self, request: Request) -> Completion:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            before_sleep=self._note_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self.gate.wait()
                self.stats.model_calls += 1
                try:
                    completion = await self.backend.complete(request)
                except TransientError as exc:
                    self.stats.faults[exc.kind] += 1
                    if exc.kind == "429":
                        self.gate.pause(exc.retry_after if exc.retry_after is not None else 2.0)
                    raise
                rate = completion.rate
                if rate and rate.remaining_requests == 0 and rate.reset_seconds:
                    self.gate.pause(rate.reset_seconds)
                return completion
        raise AssertionError("unreachable: tenacity reraises")

    @staticmethod
    def _wait(state: RetryCallState) -> float:
        """Honour retry-after when the provider sent one; else exponential backoff with jitter."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return exc.retry_after + random.uniform(0, 0.25)
        return float(min(0.5 * 2 ** (state.attempt_number - 1), 30.0) * random.uniform(0.5, 1.0))

    def _note_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1


# ---------------------------------------------------------------------------------------------
# One task: idea -> write -> record -> gates


@dataclass
class _Outcome:
    task: Task
    accepted: bool
    reason: str = ""


class _Worker:
    def __init__(
        self, caller: _Caller, archetypes: dict[str, Archetype], rundir: RunDir, max_reasks: int
    ):
        self.caller = caller
        self.archetypes = archetypes
        self.rundir = rundir
        self.max_reasks = max_reasks

    async def process(self, task: Task) -> _Outcome:
        archetype = self.archetypes[task.archetype_id]
        calls: list[Completion] = []
        idea = await self._idea(task, archetype, calls)
        if idea is None:
            return self._reject(
                task, "idea", "idea-unparseable", f"no usable idea after {self.max_reasks} re-asks"
            )
        request = write_request(task, archetype, idea)
        completion = await self._counted(request, calls)
        if completion.finish_reason == "length":
            # Policy for cut-off documents: one retry with 1.5x the room, then reject. A
            # truncated document is never kept.
            longer = request.model_copy(update={"max_tokens": int(request.max_tokens * 1.5)})
            completion = await self._counted(longer, calls)
            if completion.finish_reason == "length":
                return self._reject(
                    task,
                    "write",
                    "truncated",
                    f"hit the {longer.max_tokens}-token limit twice",
                    completion.text,
                )
        if not completion.text.strip():
            return self._reject(task, "write", "empty", "the model returned an empty document")
        usage = Usage(
            input_tokens=sum(c.input_tokens for c in calls),
            output_tokens=sum(c.output_tokens for c in calls),
            cached_input_tokens=sum(c.cached_input_tokens for c in calls),
            model_calls=len(calls),
        )
        record = make_record(
            task,
            idea,
            completion,
            language=archetype.targets.language,
            provider=self.caller.backend.provider,
            template_version=request.template_version,
            usage=usage,
        )
        failures = run_gates(record, archetype)
        if failures:
            first = failures[0]
            detail = "; ".join(f"{f.reason}: {f.detail}" for f in failures)
            return self._reject(task, "gates", first.reason, detail, record.text)
        self.rundir.append(RECORDS, record.model_dump_json())
        return _Outcome(task, accepted=True)

    async def _counted(self, request: Request, calls: list[Completion]) -> Completion:
        completion = await self.caller.call(request)
        calls.append(completion)
        return completion

    async def _idea(self, task: Task, archetype: Archetype, calls: list[Completion]) -> Idea | None:
        request = idea_request(task, archetype)
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
        return _Outcome(task, accepted=False, reason=reason)


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
        self.changed = asyncio.Condition()
        self.exhausted = False

    async def next(self) -> Task | None:
        async with self.changed:
            while True:
                if len(self.accepted) + self.inflight < self.target:
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

    async def finish(self, outcome: _Outcome | None, task: Task) -> None:
        async with self.changed:
            self.inflight -= 1
            if outcome is not None:
                (self.accepted if outcome.accepted else self.rejected).add(task.id)
            self.changed.notify_all()


# ---------------------------------------------------------------------------------------------
# The run


def _check_compatible(previous: dict[str, Any] | None, manifest: dict[str, Any], out: Path) -> None:
    if previous is None:
        return
    for key in ("seed", "provider", "model", "archetype_ids", "template_versions"):
        old, new = previous.get(key), manifest.get(key)
        if old is not None and old != new:
            raise ConfigError(
                f"{out} holds a run with {key}={json.dumps(old)}, not {json.dumps(new)}; "
                "rerun with the same options to continue it, or choose another --out"
            )


def _safe_url(url: str | None) -> str | None:
    """A base URL without any user:password part."""
    if not url:
        return None
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def generate(archetypes: Sequence[Archetype], options: RunOptions) -> RunSummary:
    """Run (or resume, or extend) a generation into `options.out`."""
    by_id = {a.id: a for a in archetypes}
    backend = create_backend(options.backend)
    resolve = getattr(backend, "resolve_model", None)
    if resolve is not None:
        await resolve()
    prices = load_prices(options.prices_file)
    price = prices.lookup(backend.model, backend.provider, options.backend.self_hosted)
    if options.budget is not None and price is None:
        raise ConfigError(
            f"--budget needs a price for model '{backend.model}': add it with --prices FILE"
        )

    with RunDir(options.out) as rundir:
        manifest = _manifest_base(archetypes, options, backend)
        previous = rundir.read_manifest()
        _check_compatible(previous, manifest, options.out)
        stats = _Stats()
        previous_faults = Counter((previous or {}).get("faults", {}))
        caller = _Caller(
            backend, rundir, price, options.budget, options.max_transport_retries, stats
        )
        accepted = {line["id"] for line in rundir.read_jsonl(RECORDS)}
        rejects = list(rundir.read_jsonl(REJECTS))
        rejected = {line["task_id"] for line in rejects}
        worker = _Worker(caller, by_id, rundir, options.max_reasks)
        scheduler = _Scheduler(
            iter_tasks(archetypes, options.seed),
            options.n,
            accepted,
            rejected,
            max_draws=int(options.n * options.attempts_factor) + 10,
        )
        progress = Progress(options.n, len(accepted), enabled=options.progress)
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
                usage=_usage_totals(caller.cache.values()),
                cost_usd=round(caller.spent, 6),
                price_known=price is not None,
                faults=dict(sorted((previous_faults + stats.faults).items())),
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
                try:
                    outcome = await worker.process(task)
                except BudgetReached:
                    status.update(
                        value="budget",
                        message=(
                            f"stopped: the next call could take spending past the budget of "
                            f"${options.budget:.2f} (spent ${caller.spent:.4f}); raise --budget and rerun "
                            "to continue"
                        ),
                    )
                    raise _Stop from None
                except TransientError as exc:
                    failed[exc.kind] += 1
                except PermanentError as exc:
                    if exc.fatal:
                        status.update(value="failed", message=str(exc))
                        raise _Stop from None
                    failed["rejected-by-provider"] += 1
                finally:
                    await scheduler.finish(outcome, task)
                progress.update(len(scheduler.accepted), caller.spent, caller.tokens)

        loop = asyncio.get_running_loop()
        workers = [asyncio.create_task(work()) for _ in range(max(options.concurrency, 1))]
        interrupted = False

        def on_signal() -> None:
            nonlocal interrupted
            interrupted = True
            for w in workers:
                w.cancel()

        installed = _install_signal_handlers(loop, on_signal)
        try:
            results = await asyncio.gather(*workers, return_exceptions=True)
        finally:
            _remove_signal_handlers(loop, installed)
            progress.close()
            await backend.aclose()
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
        elif status["value"] == "running":
            if done >= options.n:
                status.update(value="complete", message=f"done: {done} documents in {options.out}")
            elif failed:
                status.update(
                    value="incomplete",
                    message=(
                        f"incomplete: {done} of {options.n} documents; {sum(failed.values())} tasks failed "
                        f"after retries ({', '.join(f'{k} {v}' for k, v in failed.items())}); "
                        "rerun the same command to retry them"
                    ),
                )
            else:
                status.update(
                    value="incomplete",
                    message=(
                        f"incomplete: {done} of {options.n} documents after {scheduler.draws} attempts; "
                        "too many were rejected (see rejects.jsonl)"
                    ),
                )
        write_manifest(status["value"])
        return RunSummary(
            accepted=done,
            target=options.n,
            rejected=Counter(r["reason"] for r in rundir.read_jsonl(REJECTS)),
            status=status["value"],
            cost_usd=caller.spent,
            model_calls=stats.model_calls,
            cache_hits=stats.cache_hits,
            message=status["message"],
        )


def _usage_totals(completions: Any) -> dict[str, int]:
    totals = Counter[str]()
    for c in completions:
        totals["input_tokens"] += c.input_tokens
        totals["output_tokens"] += c.output_tokens
        totals["cached_input_tokens"] += c.cached_input_tokens
        totals["completions"] += 1
    return dict(totals)


def _manifest_base(
    archetypes: Sequence[Archetype], options: RunOptions, backend: Backend
) -> dict[str, Any]:
    from generator.gates import enforced_gates

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
        "base_url": _safe_url(options.backend.base_url),
        "template_versions": template_versions(),
        "concurrency": options.concurrency,
        "budget_usd": options.budget,
        "gates": enforced_gates(),
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
