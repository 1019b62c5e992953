"""The openai backend (generator/backends/openai_backend.py): the SDK's errors carry the wait
the provider asked for, read from the whole header set."""

from __future__ import annotations

import httpx2
import openai
import pytest

from generator.backends.openai_backend import _batch_errors
from generator.errors import TransientError


def test_sdk_errors_carry_the_wait_from_the_whole_header_set() -> None:
    """The synchronous path and the batch API path both read every header form."""
    response = httpx2.Response(
        429,
        headers={"Retry-After": "2", "Retry-After-Ms": "1500"},
        request=httpx2.Request("POST", "http://127.0.0.1/v1/batches"),
    )
    with pytest.raises(TransientError) as raised, _batch_errors("create a batch"):
        raise openai.RateLimitError("rate limited", response=response, body=None)
    assert (raised.value.kind, raised.value.retry_after) == ("429", 1.5)
