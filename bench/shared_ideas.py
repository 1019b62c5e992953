"""Benchmark 5: do several ideas per call (n=K) keep the ideas as diverse as K separate calls?

llama.cpp's `llama-server` (the `bench` extra) serves the embedded SmolLM2 with K slots (it
refuses n above its slot count). For G groups of the plan drawn with --samples-per-request K,
the tool's own requests are sent both ways: the group's shared idea call asking for K answers,
and K separate calls, one per task of the group, each with its own seed. For each way it
reports the answers that parse as ideas, the pairs of answers within a group that the tool's
near-repeat rule would pass over (word-trigram Jaccard above 0.5), the mean pairwise Jaccard,
and the wall time and tokens the server needed.

    python -m bench.shared_ideas [--groups 6] [--samples 4]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

from bench._common import REPO, LlamaServer, save


def jaccard(a: str, b: str) -> float:
    from generator.calls import _trigrams

    first, second = _trigrams(a), _trigrams(b)
    return len(first & second) / len(first | second) if first | second else 1.0


def describe(groups: list[list[str]], seconds: float, usage: dict[str, int]) -> dict[str, Any]:
    from generator.calls import near_repeat
    from generator.prompts import IdeaParseError, parse_idea

    pairs = [pair for answers in groups for pair in itertools.combinations(answers, 2)]
    parsed = 0
    for answer in (a for answers in groups for a in answers):
        try:
            parse_idea(answer)
            parsed += 1
        except IdeaParseError:
            pass
    answers = sum(len(g) for g in groups)
    return {
        "answers": answers,
        "parsed_as_ideas": parsed,
        "pairs": len(pairs),
        "near_repeat_pairs": sum(near_repeat(a, b) for a, b in pairs),
        "mean_pairwise_jaccard": round(sum(jaccard(a, b) for a, b in pairs) / len(pairs), 3)
        if pairs
        else None,
        "seconds": round(seconds, 1),
        **usage,
    }


async def measure(base_url: str, groups: int, samples: int) -> dict[str, Any]:
    from generator.backends.base import BackendConfig
    from generator.backends.openai_backend import OpenAIBackend
    from generator.plan import plan
    from generator.prompts import idea_request
    from generator.spec import load_specs

    archetypes = {a.id: a for a in load_specs([REPO / "archetypes"])}
    tasks = plan(list(archetypes.values()), groups * samples, seed=0, samples=samples)
    backend = OpenAIBackend(BackendConfig("openai", "smollm2", base_url=base_url, timeout=1800))
    shared: list[list[str]] = []
    separate: list[list[str]] = []
    usage = {"shared": {"input_tokens": 0, "output_tokens": 0}}
    usage["separate"] = dict(usage["shared"])
    times = {"shared": 0.0, "separate": 0.0}
    try:
        for start in range(0, len(tasks), samples):
            group = tasks[start : start + samples]
            archetype = archetypes[group[0].archetype_id]
            began = time.monotonic()
            answers = await backend.complete_samples(idea_request(group[0], archetype))
            times["shared"] += time.monotonic() - began
            shared.append([a.text for a in answers])
            _add(usage["shared"], answers)
            alone = []
            began = time.monotonic()
            for task in group:
                answer = await backend.complete(idea_request(task, archetype, shared=False))
                alone.append(answer.text)
                _add(usage["separate"], [answer])
            times["separate"] += time.monotonic() - began
            separate.append(alone)
    finally:
        await backend.aclose()
    return {
        "groups": groups,
        "samples_per_request": samples,
        "one_call_per_group": describe(shared, times["shared"], usage["shared"]),
        "one_call_per_idea": describe(separate, times["separate"], usage["separate"]),
    }


def _add(totals: dict[str, int], answers: list[Any]) -> None:
    for answer in answers:
        totals["input_tokens"] += answer.input_tokens
        totals["output_tokens"] += answer.output_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=6)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    with LlamaServer(args.samples, args.threads) as server:
        result = asyncio.run(measure(server.base_url, args.groups, args.samples))
    result["model"] = server.model.name
    path: Path = save("shared_ideas", result)
    print(json.dumps(result, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
