"""The error tree. The CLI turns each of these into one clean line (or one line per problem)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ArchetypeCorpusError(Exception):
    """Root of every error the tool raises on purpose. Exit code 1 unless a subclass says 2."""

    exit_code = 1


class UserError(ArchetypeCorpusError):
    """Bad input the user can fix: a spec, a flag, a missing key, an unwritable folder."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file."""

    path: Path
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class SpecError(UserError):
    """One or more problems in archetype spec files, each located at file:line:col."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (str(p.path), p.line, p.col))
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(UserError):
    """A bad flag, a missing API key, or an impossible combination of options."""


class RunLockedError(UserError):
    """Another process holds the run directory."""


class OutputError(UserError):
    """The output directory cannot be written (read-only, full disk, not a directory)."""


class BackendError(ArchetypeCorpusError):
    """A model provider failed in a way retries could not fix."""
