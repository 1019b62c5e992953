"""Anthropic's Messages API through the official SDK, its own retries off (run.py retries)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import anthropic

from generator.backends.base import (
    BackendConfig,
    Completion,
    FinishReason,
    PermanentError,
    RateInfo,
    TransientError,
    parse_retry_after,
    register,
    require_env,
)
from generator.errors import ConfigError
from generator.prompts import Request

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "stop",
    "max_tokens": "length",
}
STRUCTURED_TOOL = "submit"


class AnthropicBackend:
    provider = "anthropic"

    def __init__(self, config: BackendConfig):
        api_key = require_env("ANTHROPIC_API_KEY", flag_hint="or choose another --provider")
        if not config.model:
            raise ConfigError(
                "--model is required with --provider anthropic (e.g. --model claude-haiku-4-5)"
            )
        self.model = config.model
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=config.base_url,
            max_retries=0,
            timeout=config.timeout,
        )

    def _body(self, request: Request) -> dict[str, Any]:
        # No sampling parameters: the current Messages API leaves temperature to the model.
        # The brief is the long shared prefix: marked cacheable so every task of an archetype
        # after the first reads it from Anthropic's prompt cache.
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "system": [
                {"type": "text", "text": request.system, "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [
                {"role": m.role, "content": m.content}
                for m in request.messages
                if m.role != "system"
            ],
        }
        if request.json_schema is not None:
            body["tools"] = [
                {
                    "name": STRUCTURED_TOOL,
                    "description": "Submit the answer as structured data.",
                    "input_schema": request.json_schema,
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": STRUCTURED_TOOL}
        return body

    async def complete(self, request: Request) -> Completion:
        try:
            raw = await self.client.messages.with_raw_response.create(**self._body(request))
            message = await raw.parse()
        except anthropic.APIStatusError as exc:
            raise _classify_status(exc) from None
        except anthropic.APITimeoutError:
            raise TransientError("timeout", "the request timed out") from None
        except anthropic.APIConnectionError as exc:
            raise TransientError(
                "connection", f"connection failed: {exc.__cause__ or exc}"
            ) from None
        except (anthropic.APIResponseValidationError, json.JSONDecodeError, ValueError) as exc:
            raise TransientError("malformed", f"malformed response body: {exc}") from None
        text = _answer_text(message.content, structured=request.json_schema is not None)
        if text is None:
            raise TransientError("empty", "the response had no usable content")
        usage = message.usage
        return Completion(
            text=text,
            finish_reason=_FINISH.get(message.stop_reason or "", "other"),
            input_tokens=(usage.input_tokens or 0)
            + (usage.cache_read_input_tokens or 0)
            + (usage.cache_creation_input_tokens or 0),
            output_tokens=usage.output_tokens or 0,
            cached_input_tokens=usage.cache_read_input_tokens or 0,
            model=message.model or self.model,
            rate=_rate_info(raw.headers),
        )

    async def aclose(self) -> None:
        await self.client.close()


def _answer_text(blocks: list[Any], structured: bool) -> str | None:
    if structured:
        for block in blocks:
            if getattr(block, "type", None) == "tool_use":
                return json.dumps(block.input, ensure_ascii=False)
    texts = [block.text for block in blocks if getattr(block, "type", None) == "text"]
    return "".join(texts) if texts else None


def _classify_status(exc: anthropic.APIStatusError) -> Exception:
    status = exc.status_code
    retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
    if status == 429:
        return TransientError("429", "rate limited (429)", retry_after)
    if status == 529 or status >= 500 or status == 408:
        return TransientError(str(status), f"server error ({status})", retry_after)
    if status in (401, 403):
        return PermanentError(
            f"the provider refused the credentials ({status}): check ANTHROPIC_API_KEY", fatal=True
        )
    if status == 404:
        return PermanentError(f"not found ({status}): check --model", fatal=True)
    return PermanentError(f"the provider rejected the request ({status}): {str(exc.message)[:300]}")


def _rate_info(headers: Mapping[str, str]) -> RateInfo | None:
    remaining = headers.get("anthropic-ratelimit-requests-remaining")
    tokens = headers.get("anthropic-ratelimit-tokens-remaining")
    if remaining is None and tokens is None:
        return None
    return RateInfo(
        remaining_requests=int(remaining) if remaining and remaining.isdigit() else None,
        remaining_tokens=int(tokens) if tokens and tokens.isdigit() else None,
        reset_seconds=_seconds_until(headers.get("anthropic-ratelimit-requests-reset")),
    )


def _seconds_until(stamp: str | None) -> float | None:
    """Anthropic gives resets as RFC 3339 timestamps."""
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


@register("anthropic")
def _factory(config: BackendConfig) -> AnthropicBackend:
    return AnthropicBackend(config)
