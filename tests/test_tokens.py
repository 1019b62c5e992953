"""Offline token counting (generator/tokens.py)."""

from __future__ import annotations

import pytest

from generator.tokens import count_prompt_tokens, count_tokens

# bpe-openai reads its packaged encodings with a deprecated importlib.resources call.
pytestmark = pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")


def test_counting_needs_no_network_and_grows_with_the_text() -> None:
    one = count_tokens("The ferry left at seven.")
    assert 0 < one < count_tokens("The ferry left at seven. " * 10)


def test_special_token_look_alikes_are_plain_text() -> None:
    """A document may contain <|endoftext|>; counting it must not raise."""
    assert count_tokens("before <|endoftext|> after") > count_tokens("before after")


def test_prompt_counts_match_plain_counts() -> None:
    text = "A brief for the patient tutor, repeated in every request."
    assert count_prompt_tokens(text) == count_tokens(text)
