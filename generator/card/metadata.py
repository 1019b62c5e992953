"""The card's YAML header for the Hub (huggingface_hub's DatasetCardData with `datasets`'
dataset_info), and the check that the Hub's client and `datasets` parse it."""

from __future__ import annotations

import re
from typing import Any

from generator.card.context import CardContext

TAGS = ["synthetic", "ai-character", "midtraining", "alignment"]

# The Hub's size buckets (upper bounds are exclusive).
_SIZE_BUCKETS = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"),
    (100_000_000_000, "10B<n<100B"),
    (1_000_000_000_000, "100B<n<1T"),
]


def size_category(n: int) -> str:
    for bound, label in _SIZE_BUCKETS:
        if n < bound:
            return label
    return "n>1T"


def _hub_language(code: str) -> str | None:
    """The Hub wants ISO 639 codes: 'pt-BR' -> 'pt'; 'unknown' is left out."""
    primary = code.split("-")[0].split("_")[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def pretty_name(archetype_ids: list[str]) -> str:
    if not archetype_ids:
        return "Archetype corpus"
    if len(archetype_ids) <= 3:
        return "Archetype corpus: " + ", ".join(archetype_ids)
    return f"Archetype corpus ({len(archetype_ids)} archetypes)"


def card_metadata(context: CardContext, archetype_ids: list[str]) -> Any:
    """The YAML header as huggingface_hub's DatasetCardData, with `datasets`' dataset_info."""
    from datasets import DatasetInfo
    from datasets import SplitInfo as HfSplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.splits import SplitDict
    from huggingface_hub import DatasetCardData

    stats = context.stats
    languages = [
        lang
        for lang in dict.fromkeys(
            _hub_language(code)
            for code, _ in sorted(stats.languages.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        if lang
    ]
    total = sum(s.rows for s in context.splits)
    data = DatasetCardData(
        license=context.license,
        language=languages or None,
        task_categories=["text-generation"],
        size_categories=[size_category(total)],
        pretty_name=pretty_name(archetype_ids),
        tags=list(TAGS),
        configs=[
            {
                "config_name": "default",
                "data_files": [
                    {"split": s.name, "path": f"data/{s.name}-*"} for s in context.splits
                ],
            }
        ],
    )
    splits = SplitDict()
    for s in context.splits:
        splits.add(HfSplitInfo(name=s.name, num_bytes=s.arrow_bytes, num_examples=s.rows))
    info = DatasetInfo(
        features=context.features,
        splits=splits,
        download_size=sum(s.parquet_bytes for s in context.splits),
        dataset_size=sum(s.arrow_bytes for s in context.splits),
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    return data


HEADER_ORDER = [
    "license",
    "language",
    "task_categories",
    "size_categories",
    "pretty_name",
    "tags",
    "configs",
    "dataset_info",
]


def check_card(text: str, split_names: list[str]) -> None:
    """Parse the card as the Hub's client and `datasets` do (offline). A failure is a bug here,
    not the user's, so it raises RuntimeError."""
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    parsed = DatasetCard(text)
    data = parsed.data
    problems = []
    if data.get("task_categories") != ["text-generation"]:
        problems.append("task_categories")
    if not data.get("license"):
        problems.append("license")
    configs = MetadataConfigs.from_dataset_card_data(data)
    files = configs.get("default", {}).get("data_files", [])
    if [f["split"] for f in files] != split_names:
        problems.append("configs")
    if problems:
        raise RuntimeError(f"the dataset card's metadata is invalid: {', '.join(problems)}")
