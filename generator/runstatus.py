"""How a generation session ended, in one line the CLI prints and the manifest records: the
status (complete, incomplete, starved, budget, batch-pending, interrupted, failed) and a message
that says what happened and what to do next."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from generator.batch_queue import BatchQueue
from generator.calls import Budget, BudgetReached
from generator.gates.heuristics import CHECKS as RELAXABLE
from generator.rundir import REJECTS
from generator.scheduler import Starvation


@dataclass
class RunStatus:
    """The session's state: `running` until it ends, then why it ended."""

    value: str = "running"
    message: str = ""


def budget_message(reached: BudgetReached, budget: Budget, cap: float | None) -> str:
    """Why the run stopped at --budget, with what is spent and held."""
    held = budget.reserved
    queued = f", ${held:.4f} more held for calls in flight or queued" if held > 0 else ""
    return (
        f"stopped at the budget: the next call could cost up to ${reached.worst_case:.4f}, "
        f"which could take spending past ${cap or 0.0:.2f} (spent ${budget.spent:.4f}{queued}); "
        "raise --budget and rerun to continue"
    )


async def submit_batches(queue: BatchQueue, out: Path) -> RunStatus:
    """Submit the queued calls as provider batches; the status says how to follow them."""
    waiting = queue.waiting()
    created = await queue.submit()
    requests = sum(info.requests for info in created)
    parts = []
    if created:
        parts.append(f"submitted {len(created)} batch(es) with {requests} requests")
    if waiting:
        parts.append(f"{waiting} requests are waiting in batches submitted earlier")
    return RunStatus(
        "batch-pending",
        f"{'; '.join(parts)}; follow them with `archetypes batch status {out}`, fetch the "
        f"results with `archetypes batch collect {out}`, then rerun this command to take "
        "every document one step further",
    )


def final_status(
    done: int, n: int, out: Path, failed: Counter[str], draws: int, rejected: Counter[str]
) -> RunStatus:
    """A session that ran out of tasks or reached N: complete, or why not."""
    if done >= n:
        return RunStatus("complete", f"done: {done} documents in {out}")
    if failed:
        kinds = ", ".join(f"{k} {v}" for k, v in failed.items())
        return RunStatus(
            "incomplete",
            f"incomplete: {done} of {n} documents; {sum(failed.values())} tasks failed after "
            f"retries ({kinds}); rerun the same command to retry them",
        )
    top = ""
    if rejected:
        reason, count = rejected.most_common(1)[0]
        top = (
            f"; most rejections were {reason} ({count} of {rejected.total()}): read their "
            f"details in {out / REJECTS}"
        )
    return RunStatus(
        "incomplete",
        f"incomplete: {done} of {n} documents after {draws} attempts this session"
        f"{top}; rerun to try more tasks (--max-attempts raises the cap)",
    )


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


def starved_status(starved: Starvation, out: Path) -> RunStatus:
    """A session the gates starved (see generator.scheduler.STARVE_AFTER), with advice."""
    where = f"the {starved.gate} {'step' if starved.gate in ('idea', 'write') else 'gate'}"
    return RunStatus(
        "starved",
        f"starved: stopped early, the first {starved.attempts} attempts kept nothing and "
        f"{starved.count} were rejected as {starved.reason} by {where}; "
        f"{_starve_advice(starved.reason, starved.gate)}; details in {out / REJECTS}",
    )
