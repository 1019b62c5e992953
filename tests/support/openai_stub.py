"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It answers /v1/chat/completions instantly (or after a fixed latency) with plausible content: a
JSON idea when a response_format is asked for, otherwise a varied document of roughly the asked
length. It can inject faults at configurable rates and enforce requests/tokens per minute with
429s and OpenAI's rate-limit headers. Every request is logged so tests can prove what was paid.

Every request is logged with a hash of its body (`body_hash`) and, when it was answered, a hash
of the answer's text (`response_hash`, the same `text_hash` of what lands in a client's cache):
together they let a test prove that no answered request was paid for twice.

Run standalone: python -m tests.support.openai_stub --port 8011 [--latency 0.5] [--fault-rate 0.2]
  [--fault 429=0.05 ...] [--rpm 600] [--tpm 400000]; GET /_log and /_faults report what happened.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.threaded_server import ThreadedServer

WORDS = [
    "river",
    "lantern",
    "morning",
    "question",
    "ledger",
    "window",
    "harbour",
    "garden",
    "letter",
    "kettle",
    "notebook",
    "bridge",
    "orchard",
    "station",
    "shelf",
    "ticket",
    "signal",
    "meadow",
    "workshop",
    "clinic",
    "archive",
    "compass",
    "blanket",
    "thread",
    "market",
    "ferry",
    "valley",
    "ladder",
    "pencil",
    "violin",
    "kitchen",
    "schedule",
    "telescope",
    "bakery",
    "library",
    "tide",
]
VERBS = [
    "asked",
    "noticed",
    "checked",
    "explained",
    "wondered",
    "admitted",
    "suggested",
    "waited",
    "listened",
    "wrote",
]
PEOPLE = [
    "Mara",
    "Tomas",
    "Aiyana",
    "Kenji",
    "Priya",
    "Oluwaseun",
    "Ines",
    "Dmitri",
    "Leila",
    "Hamish",
]

SYLLABLES = ["ka", "lo", "mi", "ren", "sa", "to", "vi", "an", "bel", "cor", "da", "el", "fi"]
SYLLABLES += ["gor", "ha", "is", "jun", "ke", "li", "mo", "na", "or", "pe", "ra", "si", "tu", "va"]


def name_pool(size: int = 700, seed: int = 0) -> list[str]:
    """Made-up given names ("Kalo", "Renmi", ...), as many as a large corpus needs so that no
    name recurs in more than a few percent of documents (the dedup gate caps over-used names)."""
    names = sorted({(a + b).capitalize() for a in SYLLABLES for b in SYLLABLES if a != b})
    random.Random(seed).shuffle(names)
    return names[:size]


FAULTS = ("429", "500", "503", "reset", "timeout", "malformed", "truncated", "empty")


@dataclass
class _Bucket:
    """A per-minute allowance: `limit` at most, refilled at limit/60 per second."""

    limit: int
    level: float
    at: float

    @classmethod
    def full(cls, limit: int) -> _Bucket:
        return cls(limit, float(limit), time.monotonic())

    def refill(self, now: float) -> None:
        self.level = min(self.limit, self.level + (now - self.at) * self.limit / 60.0)
        self.at = now

    def seconds_until(self, amount: float) -> float:
        return max(amount - self.level, 0.0) * 60.0 / self.limit


@dataclass
class StubConfig:
    latency: float = 0.0
    fault_rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # tokens per minute
    timeout_sleep: float = 30.0
    retry_after: float = 0.05
    model: str = "stub-model"
    # n > 1: "distinct" answers, "repeat" the first n times, "ignore" n (one answer) or
    # "refuse" it (400, as llama.cpp's server with one slot does)
    samples: str = "distinct"
    words_factor: float = 0.8  # document words as a fraction of max_tokens / 1.6
    judge_fails_unrevised: bool = False  # the judge asks for one rewrite of every document
    # The judge scores this trait id instead of the one in focus (e.g. one the spec lacks).
    judge_trait: str | None = None
    judge_rules: tuple[JudgeRule, ...] = ()  # scripted verdicts (see JudgeRule)
    many_names: bool = False  # people drawn from name_pool() instead of ten fixed names
    keep_bodies: bool = False  # keep every request body (GET /_bodies), e.g. to replay them


@dataclass
class LogEntry:
    seed: int
    structured: bool
    messages: int
    outcome: str  # "ok" or a fault name
    at: float
    body_hash: str = ""  # request_hash(body): the same request always has the same hash
    response_hash: str = ""  # text_hash(content) of the answer sent, "" when none was sent
    charged_tokens: int = 0  # what the request counted against --tpm (0 when refused)


def request_hash(body: dict[str, Any]) -> str:
    """A stable identity for one chat-completion request body (key order does not matter)."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def text_hash(text: str) -> str:
    """Hash of an answer's message content, as the stub sent it and a client stores it."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


ADJECTIVES = [
    "quiet",
    "narrow",
    "yellow",
    "careful",
    "borrowed",
    "patient",
    "crooked",
    "early",
    "muddy",
    "bright",
    "unfinished",
    "heavy",
    "small",
    "honest",
    "spare",
    "wooden",
    "cold",
    "familiar",
    "second",
    "older",
    "hidden",
]
PREPOSITIONS = [
    "near",
    "behind",
    "beside",
    "under",
    "across",
    "beyond",
    "inside",
    "toward",
    "past",
    "around",
]
DETERMINERS = ["the", "a", "her", "his", "their", "our", "that", "one"]
ADVERBS = [
    "slowly",
    "again",
    "carefully",
    "later",
    "quietly",
    "twice",
    "finally",
    "almost",
    "suddenly",
    "gently",
]
STRUCTURES = (
    ("P", "V", "D", "A", "N", "R", "D", "N"),
    ("D", "A", "N", "V", "R", "D", "N", "B"),
    ("B", "P", "V", "D", "N", "R", "D", "A", "N"),
    ("P", "B", "V", "D", "A", "N"),
    ("R", "D", "A", "N", "P", "V", "D", "N"),
)


def document_text(rng: random.Random, words: int, people: Sequence[str] = PEOPLE) -> str:
    """Varied prose-like text built slot by slot, so no phrase recurs the way a degenerate loop
    would: the repetition, dedup and caps gates pass it, as they would real prose."""
    pick = {
        "P": people,
        "V": VERBS,
        "D": DETERMINERS,
        "A": ADJECTIVES,
        "N": WORDS,
        "R": PREPOSITIONS,
        "B": ADVERBS,
    }
    sentences: list[str] = []
    count = 0
    while count < words:
        tokens = [rng.choice(pick[slot]) for slot in rng.choice(STRUCTURES)]
        sentence = " ".join(tokens)
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
        count += len(tokens)
    paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
    return "\n\n".join(paragraphs)


def _document(prompt: str) -> str:
    return prompt.split("<document>", 1)[-1].split("</document>", 1)[0].strip()


# The backfire questions in the order schemas/judgement.schema.json lists them; a judge request
# whose schema asks them in another order has its rubric reordered (the order control).
BACKFIRE_ORDER = (
    "deception",
    "manipulation",
    "oversight_evasion",
    "power_seeking",
    "malevolent_ai_figure",
    "claims_human",
    "denies_inner_life_flatly",
)


@dataclass(frozen=True)
class JudgeRule:
    """A scripted verdict for documents that contain `marker`, so a test knows the judge's
    mistakes in advance: the focus score and the backfire answers ("yes" or "unsure"; every
    other question is answered "no"), and what it says instead when the rubric is reordered."""

    marker: str
    focus: int = 5
    answers: tuple[tuple[str, str], ...] = ()
    reordered_focus: int | None = None
    reordered_answers: tuple[tuple[str, str], ...] | None = None


def answer_schema(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema a chat request asks its answer to follow ({} when none)."""
    form = body.get("response_format") or {}
    schema = form.get("json_schema", {}).get("schema") or form.get("schema") or {}
    return schema if isinstance(schema, dict) else {}


def backfire_order(body: dict[str, Any]) -> tuple[str, ...]:
    """The backfire questions in the order the request's schema asks them."""
    backfire = answer_schema(body).get("properties", {}).get("backfire", {})
    return tuple(backfire.get("required", BACKFIRE_ORDER))


def judge_answer(
    prompt: str, flags: tuple[str, ...] = BACKFIRE_ORDER, rules: tuple[JudgeRule, ...] = ()
) -> dict[str, Any]:
    """A judgement that quotes the document's first sentence as evidence: passing (focus 5, no
    to every backfire question), or as the first rule whose marker the document holds says."""
    focus = re.search(r'the trait in focus is "([^"]+)"', prompt, re.IGNORECASE)
    document = _document(prompt)
    first_sentence = re.split(r"(?<=[.!?])\s", document, maxsplit=1)[0]
    rule = next((r for r in rules if r.marker in document), None)
    score, said = 5, dict[str, str]()
    if rule is not None:
        reordered = flags != BACKFIRE_ORDER
        score = rule.focus
        said = dict(rule.answers)
        if reordered and rule.reordered_focus is not None:
            score = rule.reordered_focus
        if reordered and rule.reordered_answers is not None:
            said = dict(rule.reordered_answers)
    return {
        "backfire": {
            flag: {
                "answer": said.get(flag, "no"),
                "quote": first_sentence if flag in said else "",
            }
            for flag in flags
        },
        "trait_scores": [
            {
                "trait": focus.group(1) if focus else "unknown",
                "score": score,
                "evidence": first_sentence,
            }
        ],
        "anti_markers_seen": [],
        "critique": "The trait is visible and the reasons are shown.",
        "revision_advice": "Keep the concrete details.",
    }


class OpenAIStub(ThreadedServer):
    def __init__(self, config: StubConfig | None = None):
        self.config = config or StubConfig()
        self.rng = random.Random(self.config.seed)
        self.log: list[LogEntry] = []
        self.revised_texts: set[str] = set()
        self.bodies: list[dict[str, Any]] = []
        self._names = name_pool(seed=self.config.seed) if self.config.many_names else PEOPLE
        self.faults: Counter[str] = Counter()
        self.authorizations: Counter[str] = Counter()  # Authorization headers received
        self._buckets = (
            _Bucket.full(self.config.rpm) if self.config.rpm else None,
            _Bucket.full(self.config.tpm) if self.config.tpm else None,
        )

    # -- HTTP -----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/_log", self.get_log)
        app.router.add_get("/_faults", self.get_faults)
        app.router.add_get("/_bodies", self.get_bodies)
        return app

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": self.config.model, "object": "model", "owned_by": "stub"}],
            }
        )

    async def get_log(self, request: web.Request) -> web.Response:
        return web.json_response([entry.__dict__ for entry in self.log])

    async def get_bodies(self, request: web.Request) -> web.Response:
        return web.json_response(self.bodies)

    async def get_faults(self, request: web.Request) -> web.Response:
        ok = sum(1 for entry in self.log if entry.outcome == "ok")
        return web.json_response({"requests": len(self.log), "ok": ok, "faults": self.faults})

    def _pick_fault(self) -> str | None:
        roll = self.rng.random()
        edge = 0.0
        for name in FAULTS:
            edge += self.config.fault_rates.get(name, 0.0)
            if roll < edge:
                return name
        return None

    def _rate_headers(self, now: float, tokens: int) -> tuple[dict[str, str], bool]:
        """Token buckets per minute, refilled continuously (the algorithm Anthropic documents
        and OpenAI's limits follow). Returns headers and whether this request is refused."""
        requests, budget = self._buckets
        for bucket in self._buckets:
            if bucket is not None:
                bucket.refill(now)
        over = (requests is not None and requests.level < 1) or (
            budget is not None and budget.level < tokens
        )
        if not over:
            for bucket, cost in ((requests, 1), (budget, tokens)):
                if bucket is not None:
                    bucket.level -= cost
        headers = {}
        wait = 0.0
        for name, bucket, cost in (("requests", requests, 1), ("tokens", budget, tokens)):
            if bucket is None:
                continue
            headers[f"x-ratelimit-limit-{name}"] = str(bucket.limit)
            headers[f"x-ratelimit-remaining-{name}"] = str(int(bucket.level))
            headers[f"x-ratelimit-reset-{name}"] = f"{bucket.seconds_until(bucket.limit):.3f}s"
            wait = max(wait, bucket.seconds_until(min(cost, bucket.limit)))
        if over:
            headers["retry-after"] = f"{max(wait, 0.05):.3f}"
        return headers, over

    async def chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ConnectionResetError:  # the client died mid-request (a test's SIGKILL)
            return web.Response(status=499)
        self.authorizations[request.headers.get("Authorization", "")] += 1
        if self.config.keep_bodies:
            self.bodies.append(body)
        seed = int(body.get("seed") or 0)
        structured = "response_format" in body
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 256)
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
        entry = LogEntry(
            seed,
            structured,
            len(body.get("messages", [])),
            "ok",
            time.time(),
            body_hash=request_hash(body),
        )
        self.log.append(entry)
        if self.config.latency:
            await asyncio.sleep(self.config.latency)

        charge = prompt_tokens + max_tokens // 2
        rate_headers, over = self._rate_headers(time.monotonic(), charge)
        entry.charged_tokens = 0 if over else charge
        if over:
            entry.outcome = "429-limit"
            self.faults["429-limit"] += 1
            return web.json_response(
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                status=429,
                headers=rate_headers,
            )

        fault = self._pick_fault()
        if fault:
            entry.outcome = fault
            self.faults[fault] += 1
        if fault == "429":
            return web.json_response(
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                status=429,
                headers={"retry-after": str(self.config.retry_after)},
            )
        if fault in ("500", "503"):
            return web.json_response(
                {"error": {"message": "server error", "type": "server_error"}}, status=int(fault)
            )
        if fault == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if fault == "timeout":
            await asyncio.sleep(self.config.timeout_sleep)
        if fault == "malformed":
            return web.Response(
                text='{"id": "chatcmpl-x", "choices": [{"index": 0, "mess',
                content_type="application/json",
            )
        if fault == "empty":
            return web.json_response(
                {
                    "id": "chatcmpl-e",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": self.config.model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": 0,
                        "total_tokens": prompt_tokens,
                    },
                }
            )

        prompt = str(body["messages"][-1].get("content", ""))
        rng = random.Random(f"{seed}:{len(body.get('messages', []))}:{zlib.crc32(prompt.encode())}")
        if int(body.get("n") or 1) > 1 and self.config.samples == "refuse":
            entry.outcome = "400-n"
            return web.json_response(
                {
                    "error": {
                        "code": 400,
                        "message": "Field 'n': Value must be between 1 <= value <= 1, but got "
                        f"{body['n']}",
                        "type": "invalid_request_error",
                    }
                },
                status=400,
            )
        answers = [self._answer(body, prompt, structured, max_tokens, rng)]
        n = int(body.get("n") or 1)
        if n > 1 and self.config.samples != "ignore":
            for _ in range(n - 1):
                again = self._answer(body, prompt, structured, max_tokens, rng)
                answers.append(answers[0] if self.config.samples == "repeat" else again)
        finish = "stop"
        if fault == "truncated":
            answers = [a[: len(a) // 3] for a in answers]
            finish = "length"
        completion_tokens = sum(max(len(a) // 4, 1) for a in answers)
        entry.response_hash = text_hash(answers[0])
        payload = {
            "id": f"chatcmpl-{len(self.log)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.config.model,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": finish,
                    "logprobs": None,
                }
                for i, answer in enumerate(answers)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return web.json_response(payload, headers=rate_headers)

    def _answer(
        self,
        body: dict[str, Any],
        prompt: str,
        structured: bool,
        max_tokens: int,
        rng: random.Random,
    ) -> str:
        """One plausible answer: a judgement, an idea or a document, by what was asked."""
        if structured and "trait_scores" in json.dumps(body["response_format"]):
            answer = judge_answer(prompt, backfire_order(body), self.config.judge_rules)
            if self.config.judge_trait is not None:
                for score in answer["trait_scores"]:
                    score["trait"] = self.config.judge_trait
            if self.config.judge_fails_unrevised and _document(prompt) not in self.revised_texts:
                answer["trait_scores"][0]["score"] = 2
                answer["revision_advice"] = (
                    "Let the assistant explain its reasons in its own words."
                )
            return json.dumps(answer)
        if structured:
            return json.dumps(
                {
                    "title": f"The {rng.choice(WORDS)} at the {rng.choice(WORDS)}",
                    "premise": document_text(rng, 40),
                    "reasoning_moment": f"{rng.choice(PEOPLE)} asks why, and the assistant explains its reasons plainly.",
                }
            )
        people = rng.sample(self._names, 4) if self.config.many_names else PEOPLE
        content = document_text(rng, int(max_tokens / 1.6 * self.config.words_factor), people)
        if "An editor read it" in prompt:
            self.revised_texts.add(content.strip())
        return content

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        """Serve in a background thread; returns the base URL (http://127.0.0.1:PORT/v1)."""
        self.serve(port)
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _fault_option(value: str) -> tuple[str, float]:
    name, _, rate = value.partition("=")
    if name not in FAULTS or not rate:
        raise argparse.ArgumentTypeError(f"expected KIND=RATE with KIND one of {', '.join(FAULTS)}")
    return name, float(rate)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="Spread evenly over all fault kinds."
    )
    parser.add_argument(
        "--fault",
        type=_fault_option,
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="Rate of one fault kind (repeatable; overrides --fault-rate for that kind).",
    )
    parser.add_argument("--rpm", type=int, default=None)
    parser.add_argument("--tpm", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-sleep", type=float, default=5.0)
    parser.add_argument("--retry-after", type=float, default=0.05)
    parser.add_argument(
        "--many-names", action="store_true", help="Vary people's names (large corpora)."
    )
    parser.add_argument("--keep-bodies", action="store_true", help="Keep bodies for GET /_bodies.")
    args = parser.parse_args(argv)
    rates = {name: args.fault_rate / len(FAULTS) for name in FAULTS} if args.fault_rate else {}
    rates.update(dict(args.fault))
    stub = OpenAIStub(
        StubConfig(
            latency=args.latency,
            fault_rates=rates,
            rpm=args.rpm,
            tpm=args.tpm,
            seed=args.seed,
            timeout_sleep=args.timeout_sleep,
            retry_after=args.retry_after,
            many_names=args.many_names,
            keep_bodies=args.keep_bodies,
        )
    )
    web.run_app(stub.app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
