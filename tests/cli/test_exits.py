"""Exit behaviour of the CLI (generator/cli/exits.py): a reader that goes away (`| head`)
ends the command quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator.cli.exits import EXIT_BROKEN_PIPE

REPO = Path(__file__).resolve().parent.parent.parent


ARCHETYPES_BIN = Path(sys.executable).parent / "archetypes"


def _run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the command with stdout a pipe whose reading end is already closed, as when
    `head` has read what it wanted and exited."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            args, stdout=write_end, stderr=subprocess.PIPE, cwd=REPO, check=False, timeout=300
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("plan", "-n", "3"), id="a few lines"),
        pytest.param(("plan", "-n", "400", "--json"), id="more than a pipe holds"),
    ],
)
def test_closed_stdout_exits_quietly(args: tuple[str, ...]) -> None:
    result = _run_into_closed_pipe(str(ARCHETYPES_BIN), *args)
    assert result.stderr == b""
    assert result.returncode == EXIT_BROKEN_PIPE


def test_reader_closing_early_exits_quietly() -> None:
    # The `archetypes plan | head -1` of the bug report: one line read, then the pipe closed.
    with subprocess.Popen(
        [str(ARCHETYPES_BIN), "plan", "-n", "400", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        assert child.stdout.readline().startswith(b"{")
        child.stdout.close()
        stderr = child.stderr.read()
        returncode = child.wait(timeout=300)
    assert stderr == b""
    assert returncode == EXIT_BROKEN_PIPE
