"""The error tree (generator/errors.py): exit codes, located problems, provider fault kinds."""

from __future__ import annotations

from pathlib import Path

from generator.errors import (
    ArchetypeCorpusError,
    AuthError,
    ConfigError,
    Malformed,
    Problem,
    RateLimited,
    Rejected,
    ServerError,
    SpecError,
    TransientError,
)


def test_user_errors_exit_2_and_the_rest_exit_1() -> None:
    assert ConfigError("bad flag").exit_code == 2
    assert ArchetypeCorpusError("bug").exit_code == 1
    assert AuthError("bad key").exit_code == 2


def test_a_spec_error_lists_its_problems_in_file_order() -> None:
    later = Problem(Path("a.yaml"), 9, 1, "unknown key 'x'")
    earlier = Problem(Path("a.yaml"), 2, 5, "missing 'id'")
    error = SpecError([later, earlier])
    assert error.problems == [earlier, later]
    assert str(error) == "a.yaml:2:5: missing 'id'\na.yaml:9:1: unknown key 'x'"


def test_each_fault_names_its_kind_and_only_transient_ones_carry_a_wait() -> None:
    assert (RateLimited("slow down", retry_after=2.0).kind, RateLimited("x").retry_after) == (
        "429",
        None,
    )
    server = ServerError(529, "overloaded", retry_after=1.0)
    assert (server.kind, server.status, server.retry_after) == ("529", 529, 1.0)
    assert Malformed("no text", empty=True).kind == "empty"
    assert isinstance(server, TransientError)
    assert not isinstance(Rejected("too large"), TransientError)
    assert AuthError("bad key").fatal and not Rejected("too large").fatal
