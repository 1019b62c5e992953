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


# -- provider errors ----------------------------------------------------------------------------
# What a backend raises, and nothing else: the transport retry policy (generator/retry.py)
# retries the transient ones, the run gives up a task (or stops, for the fatal ones) on the
# permanent ones. `kind` names the fault in the manifest's `faults` counts.


class ProviderError(ArchetypeCorpusError):
    """A model provider's call failed."""

    kind: str = "provider"


class TransientError(ProviderError):
    """Worth retrying. `retry_after`: the seconds the provider asked to wait, if it said."""

    def __init__(self, message: str, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message)


class RateLimited(TransientError):
    """429: too many requests or tokens for now."""

    kind = "429"


class ServerError(TransientError):
    """408, 409, 5xx (and Anthropic's 529 overloaded): the provider's side, for now."""

    def __init__(self, status: int, message: str, retry_after: float | None = None):
        self.status = status
        self.kind = str(status)
        super().__init__(message, retry_after)


class Timeout(TransientError):
    """No answer in time."""

    kind = "timeout"


class ConnectionFailed(TransientError):
    """The connection was refused, reset or dropped."""

    kind = "connection"


class Malformed(TransientError):
    """An answer that could not be read, or one with nothing in it (`empty`)."""

    def __init__(self, message: str, empty: bool = False):
        self.kind = "empty" if empty else "malformed"
        super().__init__(message)


class PermanentError(ProviderError):
    """Not worth retrying. `fatal`: every later call would fail too (a bad key, a model that
    does not exist), so the run stops; otherwise only this task is given up."""

    fatal = False


class AuthError(PermanentError):
    """401/403: the provider refused the credentials."""

    kind = "auth"
    fatal = True
    exit_code = 2  # the user fixes the key


class NotFound(PermanentError):
    """404: the model, endpoint, batch or file asked for does not exist (any more). Fatal for
    a model call (the model or base URL is wrong); a batch path decides for itself."""

    kind = "not-found"
    fatal = True


class Rejected(PermanentError):
    """The provider refused this one request (400, 413, 422, ...)."""

    kind = "rejected"
