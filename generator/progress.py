"""Progress: a bar on a terminal, a plain line every few seconds otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import Any

PLAIN_INTERVAL_SECONDS = 10.0


class Progress:
    def __init__(self, total: int, done: int, enabled: bool | None = None):
        self.total = total
        self.start_done = done
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
        if self.bar is not None:
            self.bar.n = min(done, self.total)
            self.bar.set_postfix_str(f"{tokens:,} tok ${cost:.4f}", refresh=True)
            return
        now = time.monotonic()
        if now - self.last_line < PLAIN_INTERVAL_SECONDS and done < self.total:
            return
        self.last_line = now
        elapsed = max(now - self.started, 1e-9)
        rate = (done - self.start_done) / elapsed
        print(
            f"generate: {done}/{self.total} documents, {rate:.2f} doc/s, {tokens:,} tokens, "
            f"${cost:.4f}",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
