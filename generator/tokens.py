"""Offline token counting. `bpe-openai` ships cl100k_base and o200k_base inside its wheel, so
counting works on air-gapped machines (tiktoken would try to download its encodings)."""

from __future__ import annotations

import functools
from typing import Any

DEFAULT_ENCODING = "o200k_base"


@functools.cache
def encoding(name: str = DEFAULT_ENCODING) -> Any:
    import bpe_openai

    return bpe_openai.get_encoding(name)


def count_tokens(text: str, name: str = DEFAULT_ENCODING) -> int:
    """Tokens in `text`, counting special-token look-alikes such as <|endoftext|> as plain text
    (a document or a spec may contain them; they must never raise)."""
    return len(encoding(name).encode(text, disallowed_special=()))


@functools.lru_cache(maxsize=256)
def count_prompt_tokens(text: str) -> int:
    """`count_tokens` remembered for prompt parts: every call of an archetype repeats its
    brief, which would otherwise be counted again for each request's estimate."""
    return count_tokens(text)
