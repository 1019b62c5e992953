"""The Hugging Face Hub as `archetypes publish` talks to it: one HfApi client whose errors become
one clean line each, naming what to check; the token and endpoint it uses.

The token goes only into the Authorization header: it is never printed, logged or written, and
is scrubbed from any error message.
"""

from __future__ import annotations

import errno
import os
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from generator.errors import ConfigError, UserError

T = TypeVar("T")

DEFAULT_ENDPOINT = "https://huggingface.co"
_URL = re.compile(r"https?://[^\s,;()]+")
_STATUS = re.compile(r"\b([45]\d\d) [A-Z][A-Za-z ]+\)")


def resolve_token() -> str:
    """HF_TOKEN, else the stored login (`hf auth login`)."""
    from huggingface_hub import get_token

    token = os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise ConfigError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    return token


def resolve_endpoint() -> str:
    """HF_ENDPOINT read now, not when huggingface_hub was imported."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


class Hub:
    """HfApi calls with the Hub's errors turned into one clean line each."""

    def __init__(self, endpoint: str, token: str):
        from huggingface_hub import HfApi

        self.endpoint = endpoint
        self.token = token
        self.api = HfApi(endpoint=endpoint, token=token)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """`fn()`, with a Hub error while trying to `what` raised as one clean UserError."""
        try:
            return fn()
        except Exception as exc:
            error = self._translate(what, exc)
            if error is None:
                raise
            raise error from None

    def ensure_repo(self, repo_id: str, private: bool) -> str:
        """Create the dataset repository unless it exists; its URL.

        Done by hand rather than with create_repo(exist_ok=True): that path builds its answer
        from the endpoint huggingface_hub read at import time, which breaks for an HF_ENDPOINT
        set later. A token that may not create repositories in the namespace (403) may still
        write to an existing one, so a refusal is only final if the repository is not there.
        """
        from huggingface_hub.errors import HfHubHTTPError

        what = f"create the dataset repository {repo_id}"
        try:
            self.api.create_repo(
                repo_id, repo_type="dataset", private=True if private else None, exist_ok=False
            )
        except HfHubHTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status in (402, 403):
                try:
                    self.api.repo_info(repo_id, repo_type="dataset")
                except Exception:
                    raise self._translate(what, exc) or exc from None
            elif status != 409:  # 409: it exists already
                raise self._translate(what, exc) or exc from None
        except Exception as exc:
            raise self._translate(what, exc) or exc from None
        return f"{self.endpoint}/datasets/{repo_id}"

    def remote_files(self, repo_id: str, revision: str) -> dict[str, Any]:
        """The repository's files at `revision` (not its folders), by path."""
        from huggingface_hub.hf_api import RepoFile

        entries = self.call(
            "list the repository's files",
            lambda: list(
                self.api.list_repo_tree(
                    repo_id, repo_type="dataset", revision=revision, recursive=True
                )
            ),
        )
        return {e.path: e for e in entries if isinstance(e, RepoFile)}

    def upload(self, repo_id: str, branch: str, additions: list[Any]) -> None:
        """Send the LFS files' bytes to the Hub's file storage (Xet, or LFS basic transfer)
        before the commit that names them; a failure becomes one line naming what to check."""
        try:
            self.api.preupload_lfs_files(repo_id, additions, repo_type="dataset", revision=branch)
        except Exception as exc:
            if _failed_url(exc).find("/preupload/") >= 0:  # the Hub itself, not its storage
                raise self._translate(f"prepare the upload to {repo_id}", exc) or exc from None
            raise self._storage_error(repo_id, additions, exc) from None

    def _storage_error(self, repo_id: str, additions: list[Any], exc: Exception) -> UserError:
        url = _failed_url(exc)
        host = urllib.parse.urlsplit(url).netloc or "the Hub's file storage"
        where = f"the storage at {host}" if url else "the Hub's file storage"
        status = _failed_status(exc)
        detail = self._clean(_first_line(_innermost(exc)))
        # the files bound for storage; the regular ones travel inside the commit
        lfs = [a for a in additions if getattr(a, "_upload_mode", None) == "lfs"] or additions
        files = f"{len(lfs)} file(s), e.g. {lfs[0].path_in_repo},"
        if "xet-write-token" in url:
            what = f"the Hub refused a storage write token ({status or 'no answer'})"
        elif status in (401, 403):
            what = f"{where} refused the upload ({status})"
        else:
            what = f"the upload to {where} failed"
        return UserError(
            f"could not upload {files} for {repo_id}: {what}: {detail}; check network access "
            f"to {host} and that the token has write access to {repo_id} (a fine-grained token "
            "needs the repository's write scope)"
        )

    def _clean(self, text: str) -> str:
        text = " ".join(str(text).split())
        return text.replace(self.token, "[token]") if self.token else text

    def _translate(self, what: str, exc: Exception) -> UserError | None:
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

        if isinstance(exc, OfflineModeIsEnabled):
            return ConfigError(
                "HF_HUB_OFFLINE is set, so nothing can be published; unset it and try again"
            )
        if isinstance(exc, HfHubHTTPError):
            response = getattr(exc, "response", None)
            status = getattr(response, "status_code", None)
            message = self._clean(exc.server_message or _first_line(exc))
            if status == 401:
                return ConfigError(
                    f"the Hub rejected the token while trying to {what} (401: {message}); "
                    "set HF_TOKEN to a valid token with write access, or run `hf auth login`"
                )
            if status is not None and 400 <= status < 500:
                return UserError(f"the Hub refused to {what} ({status}): {message}")
            return UserError(
                f"the Hub failed to {what} ({status}): {message}; nothing was changed "
                "there, try again later"
            )
        if _is_transport_error(exc):
            url = self._request_url(exc)
            return UserError(
                f"cannot reach the Hub at {url} to {what}: {self._clean(_reason(exc))}; "
                "check your network connection (or HF_ENDPOINT)"
            )
        if isinstance(exc, ValueError) and "README.md" in str(exc):
            return UserError(
                f"the Hub rejected the dataset card: {self._clean(str(exc))}; "
                "rebuild with `archetypes build`"
            )
        return None

    def _request_url(self, exc: Exception) -> str:
        """`POST http://host/api/...` of the failed request, without its query string."""
        try:
            request = exc.request  # type: ignore[attr-defined]
            parts = urllib.parse.urlsplit(str(request.url))
            return f"{request.method} {parts.scheme}://{parts.netloc}{parts.path}"
        except Exception:  # the client raised before building a request
            return self.endpoint


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _innermost(exc: Exception) -> Exception:
    """The root cause: huggingface_hub wraps an LFS upload's HTTP error in a RuntimeError."""
    last = _chain(exc)[-1]
    return last if isinstance(last, Exception) else exc


def _failed_url(exc: BaseException) -> str:
    """The URL a failed request went to: from the HTTP error's request, else from hf_xet's
    message (it names the URL: `domain: http://...` or `url (http://...)`)."""
    for link in _chain(exc):
        request = getattr(getattr(link, "response", None), "request", None)
        if request is not None:
            return str(request.url)
        if match := _URL.search(str(link)):
            return match.group(0)
    return ""


def _failed_status(exc: BaseException) -> int | None:
    for link in _chain(exc):
        status = getattr(getattr(link, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
        if match := _STATUS.search(str(link)):
            return int(match.group(1))
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_transport_error(exc: BaseException) -> bool:
    """Connection refused, DNS failure, timeout... from whichever HTTP client huggingface_hub
    uses (httpx2 in 2.x, httpx or requests before)."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests", "ConnectionError"),
        ("requests", "Timeout"),
    ):
        try:
            kinds.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            continue
    return isinstance(exc, tuple(kinds))


def _reason(exc: BaseException) -> str:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, OSError) and current.errno == errno.ECONNREFUSED:
            return "connection refused"
        if "Connection refused" in str(current):
            return "connection refused"
        current = current.__cause__ or current.__context__
    return _first_line(exc) if isinstance(exc, Exception) else type(exc).__name__
