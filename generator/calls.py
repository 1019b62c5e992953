"""Every model call of a run goes through a `ModelCaller`: the persistent response cache (a rerun
pays for nothing twice), the shared budget (no call starts that could take spending past the
cap), pacing on the provider's rate-limit headers (generator/ratelimit.py), and the transport
retries (tenacity: 429/5xx/timeouts/dropped connections/malformed bodies, exponential backoff
with jitter, retry-after honoured: the one policy of generator/retry.py). The SDK clients have their own retries off, so the two
never multiply. Shared calls (several answers per call) are paid once for a group of tasks.
Content retries live elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from tenacity import RetryCallState

from generator.backends.base import Backend, Completion, Request
from generator.batch_queue import BatchQueue, Deferred
from generator.errors import PermanentError, RateLimited, TransientError
from generator.pricing import Price
from generator.ratelimit import RatePacer
from generator.retry import CALL_POLICY
from generator.rundir import CacheLine, RunDir
from generator.tokens import count_prompt_tokens


class BudgetReached(Exception):
    """The next call could take spending past --budget: at worst it costs `worst_case`, on top
    of `committed` (spent, plus what calls in flight or queued for a batch may still spend)."""

    def __init__(self, worst_case: float, committed: float):
        self.worst_case = worst_case
        self.committed = committed
        super().__init__(f"the next call could cost up to ${worst_case:.4f}")


@dataclass
class CallStats:
    model_calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    # Shared calls (n > 1): answers used, and answers passed over because the server refused
    # several answers ("refused"), returned fewer than asked ("missing"), or they nearly
    # repeated an earlier answer of the call ("similar").
    samples: Counter[str] = field(default_factory=Counter)


@dataclass
class Budget:
    """Spending so far (from the cache, so it survives restarts) and what calls in flight could
    still add at worst."""

    cap: float | None
    spent: float = 0.0
    reserved: float = 0.0

    def reserve(self, worst_case: float) -> None:
        """Hold `worst_case` for a call about to start, or raise BudgetReached if it could take
        spending past the cap."""
        committed = self.spent + self.reserved
        if self.cap is not None and committed + worst_case > self.cap:
            raise BudgetReached(worst_case, committed)
        self.reserved += worst_case


@dataclass
class StepTotals:
    """What one step's answers in the cache cost; `documents` is counted only for the steps in
    `COUNTED_DOCUMENTS` (a set of ids for every write of a million-document run is not free)."""

    calls: int = 0
    cost: float = 0.0
    documents: set[str] = field(default_factory=set)


# The judge's extra passes, which the manifest reports by document: the order control and the
# escalation to a stronger judge.
COUNTED_DOCUMENTS = frozenset({"rejudge", "escalate"})


class ResponseCache:
    """cache.jsonl: one line per paid model answer, keyed by task, step, model and prompt."""

    def __init__(self, rundir: RunDir):
        self.rundir = rundir
        self.entries: dict[str, Completion] = {}
        self.cost = 0.0
        self.list_cost = 0.0  # the same answers at the full rates: no cache, no batch discount
        self.tokens = 0
        self.steps: dict[str, StepTotals] = {}
        for line in rundir.cache_lines():
            self._remember(
                line.key, line.completion, line.cost_usd, line.list_cost, line.step, line.task_id
            )

    def _remember(
        self,
        key: str,
        completion: Completion,
        cost: float,
        list_cost: float,
        step: str = "",
        task_id: str = "",
    ) -> None:
        self.entries[key] = completion
        self.cost += cost
        self.list_cost += list_cost
        self.tokens += completion.input_tokens + completion.output_tokens
        totals = self.steps.setdefault(step, StepTotals())
        totals.calls += 1
        totals.cost += cost
        if step in COUNTED_DOCUMENTS:
            totals.documents.add(task_id)

    def get(self, key: str) -> Completion | None:
        return self.entries.get(key)

    def put(
        self, key: str, request: Request, completion: Completion, cost: float, list_cost: float
    ) -> None:
        self.rundir.append_cache(
            CacheLine(
                key=key,
                task_id=request.task_id,
                step=request.step,
                cost_usd=cost,
                list_cost_usd=list_cost,
                completion=completion,
            )
        )
        self._remember(key, completion, cost, list_cost, request.step, request.task_id)


class ModelCaller:
    def __init__(
        self,
        backend: Backend,
        cache: ResponseCache,
        price: Price | None,
        budget: Budget,
        stats: CallStats,
        max_retries: int = 6,
        pacer: RatePacer | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.backend = backend
        self.cache = cache
        self.price = price
        self.budget = budget
        self.stats = stats
        self.max_retries = max_retries
        self.sleep = sleep  # what the retry loop waits on (tests pass a fake clock's)
        # Callers of one backend share its pacer: the provider meters them together.
        self.pacer = pacer or RatePacer()
        # Batch mode: answers not cached yet are queued for a provider batch instead of called.
        self.batch_queue: BatchQueue | None = None
        self._shared: dict[str, asyncio.Future[None]] = {}
        self.shared_refused: str | None = None  # why the backend refused a shared call

    def key(self, request: Request) -> str:
        identity = [
            request.task_id,
            request.step,
            self.backend.provider,
            self.backend.model,
            request.fingerprint(),
        ]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]

    def cost(self, completion: Completion) -> float:
        """What the answer cost: cache reads and writes each at their rate."""
        if self.price is None:
            return 0.0
        return self.price.usage_cost(completion)

    def list_cost(self, completion: Completion) -> float:
        """What the answer would have cost without the prompt cache (for the saving reported)."""
        if self.price is None:
            return 0.0
        return self.price.list_cost(completion)

    @staticmethod
    def _prompt_tokens(request: Request) -> int:
        return sum(count_prompt_tokens(m.content) + 4 for m in request.messages)

    def _worst_case(self, request: Request) -> float:
        """The most the call can cost: the whole prompt written to the prompt cache at the
        dearest write rate (a cold cache, or one that expired) and every output token asked for."""
        if self.price is None or self.budget.cap is None:
            return 0.0
        prompt = self._prompt_tokens(request)
        output = request.max_tokens * request.samples
        return self.price.worst_case(prompt, output, batch=self.batch_queue is not None)

    async def call(self, request: Request) -> Completion:
        key = self.key(request)
        cached = self.cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        worst = self._worst_case(request)
        if self.batch_queue is not None:
            # Reserved and never released in this process: the batch will spend it.
            self.budget.reserve(worst)
            self.batch_queue.defer(key, request)
            raise Deferred
        self.budget.reserve(worst)
        try:
            completion = (await self._call_with_retries(request))[0]
        finally:
            self.budget.reserved -= worst
        cost = self.cost(completion)
        self.budget.spent += cost
        self.cache.put(key, request, completion, cost, self.list_cost(completion))
        return completion

    async def call_shared(self, request: Request, sample: int) -> Completion | None:
        """Answer `sample` of one call asking for `request.samples` answers: the first task of
        a group to get here pays for the call, the others wait for it. None when the server
        refuses several answers per call, when the call returned fewer answers, or when this
        one nearly repeats an earlier answer of the same call (a shared call must not cost
        diversity): the task then asks on its own."""
        key = self.key(request)
        if self.cache.get(_sample_key(key, 0)) is not None:
            self.stats.cache_hits += 1
        elif self.shared_refused is None:
            pending = self._shared.get(key)
            if pending is None:
                pending = asyncio.ensure_future(self._pay_shared(key, request))
                self._shared[key] = pending
                pending.add_done_callback(lambda _: self._shared.pop(key, None))
            await asyncio.shield(pending)
        if self.cache.get(_sample_key(key, 0)) is None:  # the server refuses several answers
            self.stats.samples["refused"] += 1
            return None
        answers = [self.cache.get(_sample_key(key, i)) for i in range(sample + 1)]
        mine = answers[-1]
        if mine is None:
            self.stats.samples["missing"] += 1
            return None
        if any(a is not None and near_repeat(a.text, mine.text) for a in answers[:-1]):
            self.stats.samples["similar"] += 1
            return None
        self.stats.samples["used"] += 1
        return mine

    async def _pay_shared(self, key: str, request: Request) -> None:
        if self.batch_queue is not None:
            raise AssertionError("shared calls are refused with --batch before the run starts")
        worst = self._worst_case(request)
        self.budget.reserve(worst)
        try:
            completions = await self._call_with_retries(request)
        except PermanentError as exc:
            if exc.fatal:
                raise
            # Some servers refuse n > 1 (llama.cpp's with one slot answers 400): every task
            # of the run then asks for its idea on its own.
            self.shared_refused = str(exc)
            return
        finally:
            self.budget.reserved -= worst
        for i, completion in enumerate(completions[: request.samples]):
            cost = self.cost(completion)
            self.budget.spent += cost
            self.cache.put(
                _sample_key(key, i), request, completion, cost, self.list_cost(completion)
            )

    async def _call_with_retries(self, request: Request) -> list[Completion]:
        policy = replace(CALL_POLICY, attempts=self.max_retries + 1)
        retrying = policy.retrying(sleep=self.sleep, before_sleep=self._note_retry)
        async for attempt in retrying:
            with attempt:
                # Providers count max_tokens against the token limit when they admit a request.
                tokens = (
                    self._prompt_tokens(request) + request.max_tokens * request.samples
                    if self.pacer.counts_tokens
                    else 0
                )
                marks = await self.pacer.admit(tokens)
                self.stats.model_calls += 1
                try:
                    completions = await self.backend.complete_samples(request)
                except TransientError as exc:
                    self.stats.faults[exc.kind] += 1
                    if isinstance(exc, RateLimited):
                        self.pacer.pause(exc.retry_after if exc.retry_after is not None else 2.0)
                    raise
                self.pacer.observe(completions[0].rate, marks)
                return completions
        raise AssertionError("unreachable: tenacity reraises")

    def _note_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1


def _sample_key(key: str, sample: int) -> str:
    return f"{key}/{sample}"


SIMILAR_ANSWERS = 0.5  # Jaccard similarity of word trigrams above which two answers are one


def near_repeat(a: str, b: str) -> bool:
    """Whether two answers of one shared call say nearly the same thing (word trigrams)."""
    first, second = _trigrams(a), _trigrams(b)
    if not first or not second:
        return a.strip() == b.strip()
    return len(first & second) / len(first | second) > SIMILAR_ANSWERS


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}
