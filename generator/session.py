"""The judge side of a session, wired once: the gate policy (which judge, enforced or not, which
stronger judge to escalate to), the gatekeeper with its judge callers, and what the judge's extra
passes cost. `generate` (generator/run.py), `check` (generator/recheck.py) and `calibrate`
(generator/calibrate.py) all build their gates here, so a gate stack calibrated on a labelled set
is the one a run uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.backends.base import Backend, BackendConfig, create_backend
from generator.backends.local import DEFAULT_MODEL_NAME
from generator.calls import Budget, CallStats, ModelCaller, ResponseCache, StepTotals
from generator.gates import TINY_MODEL_NOTE, Gatekeeper, GatePolicy, JudgeMode
from generator.gates.dedup import DedupIndex
from generator.pricing import load_prices
from generator.rundir import RunDir


async def open_backend(config: BackendConfig) -> Backend:
    """A backend, with its model resolved where the server names it (a compatible server
    without --model)."""
    backend = create_backend(config)
    resolve = getattr(backend, "resolve_model", None)
    if resolve is not None:
        await resolve()
    return backend


def is_tiny(backend: Backend) -> bool:
    """The embedded 135M model: its verdicts are recorded, never enforced by default."""
    return backend.provider == "local" and backend.model == DEFAULT_MODEL_NAME


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
            price = prices.lookup(of.model, of.provider, config.self_hosted)
            return ModelCaller(of, cache, price, Budget(cap=None, spent=cache.cost), stats)

        yield Judging(policy, caller(judge, backend), caller(escalate, stronger), cache)
    finally:
        for each in opened:
            await each.aclose()
