"""Progress: a bar on a terminal, a plain line every few seconds otherwise (logs, CI).

The plain line comes at least every PLAIN_INTERVAL_SECONDS even while no call finishes (a small
model on a CPU spends tens of seconds on one document), so a watcher always sees the run alive.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

PLAIN_INTERVAL_SECONDS = 10.0


class Progress:
    def __init__(self, total: int, done: int, enabled: bool | None = None):
        self.total = total
        self.start_done = done
        self.done = done
        self.cost = 0.0
        self.tokens = 0
        self.start_tokens: int | None = None
        self.started = time.monotonic()
        self.last_line = 0.0
        self.bar: Any = None
        interactive = sys.stderr.isatty() if enabled is None else enabled
        if interactive:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=min(done, total),
                unit="doc",
                file=sys.stderr,
                dynamic_ncols=True,
                desc="generate",
            )

    def update(self, done: int, cost: float, tokens: int) -> None:
        """Record the run's totals (documents kept, dollars, tokens); show them when due."""
        if self.start_tokens is None:
            self.start_tokens = tokens
        self.done, self.cost, self.tokens = done, cost, tokens
        if self.bar is not None:
            self.bar.n = min(done, self.total)
            self.bar.set_postfix_str(f"{tokens:,} tok ${cost:.4f}", refresh=True)
            return
        if time.monotonic() - self.last_line >= PLAIN_INTERVAL_SECONDS or done >= self.total:
            self.line()

    def line(self) -> None:
        now = time.monotonic()
        self.last_line = now
        elapsed = max(now - self.started, 1e-9)
        rate = (self.done - self.start_done) / elapsed
        token_rate = (self.tokens - (self.start_tokens or 0)) / elapsed
        print(
            f"generate: {self.done}/{self.total} documents, {rate * 60:.1f} doc/min, "
            f"{self.tokens:,} tokens ({token_rate:.0f}/s), ${self.cost:.4f}, "
            f"{elapsed:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    async def heartbeat(self) -> None:
        """Print the plain line whenever one is due; run as a task, cancelled at the end."""
        if self.bar is not None:
            return
        while True:
            await asyncio.sleep(
                max(PLAIN_INTERVAL_SECONDS - (time.monotonic() - self.last_line), 0.5)
            )
            if time.monotonic() - self.last_line >= PLAIN_INTERVAL_SECONDS:
                self.line()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
