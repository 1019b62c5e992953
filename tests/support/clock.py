"""A fake monotonic clock shared by the pacer and retry tests: nothing in a test really sleeps."""

from __future__ import annotations

from generator.ratelimit import RatePacer


class FakeClock:
    """A monotonic clock that moves only when something sleeps on it, recording every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def pacer(self) -> RatePacer:
        return RatePacer(monotonic=self.monotonic, sleep=self.sleep)
