"""A session, wired once: the backends (writer, judge, stronger judge) opened and closed, the
price of each, the gate policy (which judge, enforced or not, which stronger judge to escalate
to), the gatekeeper with its judge callers, and what the judge's extra passes cost. `generate`
(generator/run.py), `check` (generator/recheck.py) and `calibrate` (generator/calibrate.py) all
build their sessions here, so a gate stack calibrated on a labelled set is the one a run uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.backends.base import Backend, BackendConfig
from generator.backends.registry import create_backend
from generator.calls import Budget, CallStats, ModelCaller, ResponseCache, StepTotals
from generator.errors import ConfigError
from generator.gates import TINY_MODEL_NOTE, Gatekeeper, GatePolicy, JudgeMode
from generator.gates.dedup import DedupIndex
from generator.pricing import Price, PriceTable, load_prices
from generator.rundir import RunDir


async def open_backend(config: BackendConfig) -> Backend:
    """A backend, with its model resolved where the server names it (a compatible server
    without --model)."""
    backend = create_backend(config)
    await backend.resolve_model()
    return backend


@dataclass
class Backends:
    """The session's opened backends; the judge is the writer's own backend when it has the
    same configuration, and the stronger judge is None when there is none (or the judge is off)."""

    writer: Backend
    judge: Backend
    judge_config: BackendConfig
    escalate: Backend | None
    escalate_config: BackendConfig | None


@asynccontextmanager
async def open_backends(
    writer: BackendConfig,
    judge: BackendConfig | None,
    escalate: BackendConfig | None,
    mode: JudgeMode | None,
) -> AsyncIterator[Backends]:
    """Open the writer's, the judge's and the stronger judge's backends (each once), and close
    them all on the way out."""
    opened: list[Backend] = []
    try:
        writer_backend = await open_backend(writer)
        opened.append(writer_backend)
        judge_config = judge or writer
        judge_backend = writer_backend
        if judge_config != writer:
            judge_backend = await open_backend(judge_config)
            opened.append(judge_backend)
        stronger = None
        if escalate is not None and mode != "off":
            stronger = await open_backend(escalate)
            opened.append(stronger)
        yield Backends(
            writer_backend, judge_backend, judge_config, stronger, escalate if stronger else None
        )
    finally:
        for backend in opened:
            await backend.aclose()


def price_of(
    prices: PriceTable, config: BackendConfig, backend: Backend, budget: float | None = None
) -> Price | None:
    """The backend's price; a run with a budget refuses a model whose price is unknown."""
    price = prices.lookup(backend.model, backend.provider, config.self_hosted)
    if budget is not None and price is None:
        raise ConfigError(
            f"--budget needs a price for model '{backend.model}': add it with --prices FILE"
        )
    return price


def is_tiny(backend: Backend) -> bool:
    """The embedded 135M model: its verdicts are recorded, never enforced by default."""
    return backend.capabilities.embedded_demo


def judge_policy(
    judge: Backend | None,
    mode: JudgeMode | None,
    relax: frozenset[str],
    escalate: Backend | None = None,
) -> GatePolicy:
    """Which gates are enforced and by which judges (no judge backend: the judge is off). The
    judge is enforced unless the user says otherwise, except the embedded tiny model, which is
    advisory by default."""
    if judge is None or mode == "off":
        return GatePolicy(relax=relax, judge="off")
    tiny = is_tiny(judge)
    return GatePolicy(
        relax=relax,
        judge=mode or ("advisory" if tiny else "enforce"),
        judge_model=judge.model,
        judge_note=TINY_MODEL_NOTE if tiny else "",
        escalate_model=escalate.model if escalate is not None else None,
    )


def build_gatekeeper(
    policy: GatePolicy,
    dedup: DedupIndex,
    judge: ModelCaller | None,
    escalate: ModelCaller | None = None,
) -> Gatekeeper:
    """The gatekeeper, with the judge (and the stronger judge) called through their callers:
    cache, budget, rate limits and transport retries."""
    if policy.judge == "off" or judge is None:
        return Gatekeeper(policy, dedup, None)
    return Gatekeeper(policy, dedup, judge.call, escalate.call if escalate is not None else None)


def judge_passes(cache: ResponseCache, policy: GatePolicy) -> dict[str, Any]:
    """For the manifest: how many documents the order control asked again and how many went to
    the stronger judge, with their calls and cost (from the cache, so earlier sessions count)."""

    def totals(step: str) -> dict[str, Any]:
        found = cache.steps.get(step, StepTotals())
        return {
            "documents": len(found.documents),
            "calls": found.calls,
            "cost_usd": round(found.cost, 6),
        }

    return {
        "order_control": totals("rejudge"),
        "escalation": {"model": policy.escalate_model, **totals("escalate")},
    }


@dataclass
class Judging:
    """The judge side of a session without a writer (`check`, `calibrate`)."""

    policy: GatePolicy
    judge: ModelCaller | None  # None: the judge is off
    escalate: ModelCaller | None
    cache: ResponseCache

    def gatekeeper(self, dedup: DedupIndex | None = None) -> Gatekeeper:
        return build_gatekeeper(self.policy, dedup or DedupIndex(), self.judge, self.escalate)

    def passes(self) -> dict[str, Any]:
        return judge_passes(self.cache, self.policy)


@asynccontextmanager
async def judging(
    rundir: RunDir,
    judge: BackendConfig,
    mode: JudgeMode | None,
    relax: frozenset[str] = frozenset(),
    escalate: BackendConfig | None = None,
    prices_file: Path | None = None,
) -> AsyncIterator[Judging]:
    """Open the judge's backend (and the stronger judge's), with callers on `rundir`'s cache and
    no budget; the backends are closed on the way out. With the judge off, no backend is
    opened at all."""
    opened: list[Backend] = []
    try:
        backend = await open_backend(judge) if mode != "off" else None
        if backend is not None:
            opened.append(backend)
        stronger = await open_backend(escalate) if escalate and backend else None
        if stronger is not None:
            opened.append(stronger)
        policy = judge_policy(backend, mode, relax, stronger)
        cache = ResponseCache(rundir)
        prices = load_prices(prices_file)
        stats = CallStats()

        def caller(config: BackendConfig | None, of: Backend | None) -> ModelCaller | None:
            if config is None or of is None:
                return None
            price = price_of(prices, config, of)
            return ModelCaller(of, cache, price, Budget(cap=None, spent=cache.cost), stats)

        yield Judging(policy, caller(judge, backend), caller(escalate, stronger), cache)
    finally:
        for each in opened:
            await each.aclose()
