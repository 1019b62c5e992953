"""Which task runs next: the scheduler hands out tasks from the plan stream until N documents
are accepted (counting earlier sessions), and stops a run the gates starve."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from generator.plan import Task


@dataclass
class Outcome:
    """What became of one task: kept, or rejected by a step or gate for a reason."""

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


def starvation(outcomes: Sequence[Outcome]) -> Starvation | None:
    """Whether these first attempts of a session starve the run (see STARVE_AFTER)."""
    if len(outcomes) < STARVE_AFTER or any(o.accepted for o in outcomes):
        return None
    (reason, gate), count = Counter((o.reason, o.gate) for o in outcomes).most_common(1)[0]
    if count < STARVE_SHARE * len(outcomes):
        return None
    return Starvation(reason, gate, count, len(outcomes))


class Scheduler:
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
        self.first: list[Outcome] = []  # this session's first STARVE_AFTER outcomes
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

    async def finish(self, outcome: Outcome | None, task: Task, deferred: bool = False) -> None:
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
