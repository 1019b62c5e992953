"""The scheduler's starvation rule (generator/scheduler.py): when the gates reject so much that
a run would never finish, it stops early."""

from __future__ import annotations

from tests.conftest import LIBRARY


def test_the_starvation_rule() -> None:
    """Stop when the session's first 50 attempts kept nothing and 90% share one reason."""
    from generator import spec
    from generator.plan import plan
    from generator.scheduler import STARVE_AFTER, STARVE_SHARE, Outcome, starvation

    task = plan(spec.load_specs([LIBRARY / "patient-tutor.yaml"]), 1, 0)[0]

    def outcomes(main: int, other: int, kept: int = 0) -> list[Outcome]:
        return (
            [Outcome(task, False, "judge-unparseable", "judge")] * main
            + [Outcome(task, False, "length", "heuristics")] * other
            + [Outcome(task, True)] * kept
        )

    assert (STARVE_AFTER, STARVE_SHARE) == (50, 0.9)
    starved = starvation(outcomes(45, 5))
    assert starved is not None
    assert (starved.reason, starved.gate, starved.count, starved.attempts) == (
        "judge-unparseable",
        "judge",
        45,
        50,
    )
    assert starvation(outcomes(44, 6)) is None  # no single reason dominates
    assert starvation(outcomes(49, 0, kept=1)) is None  # something was kept
    assert starvation(outcomes(49, 0)) is None  # too early to tell
