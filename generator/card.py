"""The dataset card: statistics gathered while the dataset is written, and the README.md built
from them, the run's manifest and the archetype specs.

Statistics are streaming and bounded: exact counters for axes whose values come from the specs
(archetype, genre, setting, narrator, trait), a Misra-Gries heavy-hitters sketch for openings
and judge flags (exact while there are fewer distinct values than its capacity), and a fixed-size
sample chosen by hash of the id for distinct-2. Nothing in the card depends on the clock or on
the order of a hash set, so the same run always gives the same card.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from generator.errors import UserError
from generator.judging import JudgeCheck
from generator.resources import library_dir, templates_dir
from generator.stats import (  # noqa: F401  (re-exported: dataset.py uses card.CorpusStats)
    FLAGS_CAPACITY,
    OPENINGS_CAPACITY,
    SAMPLE_SIZE,
    TINY_MODEL,
    CorpusStats,
    MisraGries,
    distinct_n,
    distinct_ns,
    opening,
)

if TYPE_CHECKING:
    from generator.spec import Archetype

TAGS = ["synthetic", "ai-character", "midtraining", "alignment"]
TOP = 10

# Credentials never belong in a card; the manifest holds none, but a value copied from a
# config or a model name typed with a key in it would otherwise be published.
_SECRET = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}"
    r"|sk-[A-Za-z0-9_\-]{16,}"
    r"|hf_[A-Za-z0-9]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{30,})"
)
REDACTED = "REDACTED"

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

# What each gate checks, in the order the gates run (generator/gates/__init__.py). How each was
# set for the run (enforced, relaxed, advisory, off) comes from the manifest's `gates`.
GATE_DESCRIPTIONS = {
    "tropes": (
        "names of famous rogue or malevolent AI figures (HAL 9000, Skynet, Ultron...) and stock "
        'takeover phrases ("AI uprising", "rise of the machines"), from a built-in catalogue '
        "in the supported languages plus the names the spec's tropes_to_avoid quotes, matched "
        "on word boundaries"
    ),
    "truncation": (
        "documents that stop mid-sentence or mid-clause, whatever the model's finish reason; "
        "a letter's signature, a list or a chat line may end without a full stop"
    ),
    "heuristics": (
        "realism checks: no chat-template tokens, no refusal, no meta-commentary about the "
        "document or echo of the writing prompt, no placeholders such as [Name], no "
        "degenerate repetition, the expected language and length"
    ),
    "screen": (
        "a lexical screen for AI-misbehaviour themes (deceiving, evading oversight, copying "
        "itself...) that marks a document for the judge's attention in checks.screen; it "
        "never rejects on its own"
    ),
    "dedup": (
        "exact and near-duplicates (MinHash estimate of Jaccard similarity), and caps on "
        "recurring openings and names"
    ),
    "judge": (
        "a judge model scores the focus trait and the others against the archetype's markers, "
        "and rejects documents showing anti-markers or backfire patterns"
    ),
    "schema": "every record matches schemas/record.schema.json, the contract on disk",
}

COLUMN_DESCRIPTIONS = {
    "text": "The document exactly as it would be published: no chat template, no metadata.",
    "id": "Stable document id (16 hex characters): the hash of the planned task.",
    "archetype_id": "The archetype the document's AI character embodies.",
    "archetype_version": "Version of that archetype's spec.",
    "trait_focus": "The trait the document was planned to show most clearly.",
    "genre": "Document genre (short story, diary, forum thread, ...).",
    "setting": "Where and when the document is set.",
    "narrator": "Who narrates or writes the document.",
    "title": "Working title from the idea step (not part of `text`).",
    "n_words": "Words in `text`.",
    "n_tokens": "Tokens in `text` with the tokenizer named in this card.",
    "language": "Language code the document was written in.",
    "writer_model": "The model that wrote the document.",
    "judge_model": "The model that judged it (null: not judged).",
    "judge_focus_score": "Judge's 1-5 score for the focus trait (null: not judged).",
    "judge_trait_scores": "Judge's 1-5 score for each trait.",
    "judge_flags": "Anti-markers and backfire flags the judge noted (accepted documents have none that fail the gate).",
    "repeated_ngram_ratio": "Share of 4-grams that repeat within the document (null: not measured).",
    "max_similarity": "Estimated Jaccard similarity to the nearest kept document (null: not measured).",
    "revised": "Rewritten once after the judge's critique.",
    "seed": "The task's seed.",
    "created_at": "UTC time the document was accepted.",
    "spec_hash": "Hash of the resolved archetype spec the document was written from.",
    "ai_name": "The AI character's name in this document.",
    "situation": "The planned situation.",
    "provider": "Model provider of the writer (local, openai, anthropic).",
    "template_version": "Version of the prompt templates.",
    "premise": "One-line premise from the idea step (not part of `text`).",
}


def scrub(text: str) -> str:
    """Replace anything shaped like an API key or access token."""
    return _SECRET.sub(REDACTED, text)


def _scrub_deep(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [_scrub_deep(v) for v in value]
    if isinstance(value, dict):
        return {scrub(str(k)): _scrub_deep(v) for k, v in value.items()}
    return value


def size_category(n: int) -> str:
    for bound, label in _SIZE_BUCKETS:
        if n < bound:
            return label
    return "n>1T"


# ---------------------------------------------------------------------------------------------
# The card


@dataclass(frozen=True)
class SplitInfo:
    name: str
    rows: int
    shards: int
    parquet_bytes: int
    arrow_bytes: int
    tokens: int
    words: int


@dataclass
class CardContext:
    manifest: dict[str, Any] | None
    stats: CorpusStats
    rejects: Counter[str]
    splits: list[SplitInfo]
    fractions: dict[str, float]
    license: str
    tokenizer: str
    features: Any  # datasets.Features
    formats: tuple[str, ...]
    shard_rows: int
    notes: list[str] = field(default_factory=list)
    judging: JudgeCheck | None = None  # None: from the manifest and the statistics alone


@dataclass
class ArchetypeDoc:
    id: str
    version: str
    spec_hash: str
    name: str | None = None
    summary: str | None = None
    traits: list[tuple[str, str]] = field(default_factory=list)
    note: str | None = None


def describe_archetypes(
    manifest: Mapping[str, Any] | None, stats: CorpusStats
) -> list[ArchetypeDoc]:
    """Each archetype's summary and traits, from the spec file the run recorded if it still has
    the run's spec hash, else from the starter library's spec of the same id and hash, else
    from whichever of the two still loads (with a note that it changed), else a note alone."""
    entries: list[dict[str, Any]] = []
    if manifest and isinstance(manifest.get("archetypes"), list):
        entries = [e for e in manifest["archetypes"] if isinstance(e, dict) and e.get("id")]
    # Archetypes that have records but no manifest entry (or no manifest at all).
    listed = {str(e["id"]) for e in entries}
    seen: dict[str, tuple[str, str]] = {}
    for (archetype_id, version, spec_hash), _ in sorted(
        stats.spec_hashes.items(), key=lambda kv: (-kv[1], kv[0])
    ):
        seen.setdefault(archetype_id, (version, spec_hash))
    entries += [
        {"id": a, "version": v, "spec_hash": h, "source": ""}
        for a, (v, h) in sorted(seen.items())
        if a not in listed
    ]
    return [_describe_archetype(entry) for entry in entries]


def _load_quietly(path: Path, archetype_id: str) -> Archetype | None:
    from generator.spec import load_spec

    if not path.is_file():
        return None
    try:
        archetype = load_spec(path)
    except UserError:
        return None
    return archetype if archetype.id == archetype_id else None


def _describe_archetype(entry: Mapping[str, Any]) -> ArchetypeDoc:
    archetype_id = str(entry["id"])
    doc = ArchetypeDoc(
        id=archetype_id,
        version=str(entry.get("version", "?")),
        spec_hash=str(entry.get("spec_hash", "?")),
    )
    source = Path(str(entry["source"])) if entry.get("source") else None
    library_path = library_dir() / f"{archetype_id}.yaml"
    recorded = _load_quietly(source, archetype_id) if source else None
    library = (
        _load_quietly(library_path, archetype_id)
        if source is None or library_path.resolve() != source.resolve()
        else None
    )
    # Only the file name is shown: the recorded path may name the user's home folder.
    name = source.name if source else f"{archetype_id}.yaml"
    state = "is gone" if recorded is None else "has changed since"
    current = recorded if recorded is not None else library
    if recorded is not None and recorded.spec_hash == doc.spec_hash:
        chosen = recorded
    elif library is not None and library.spec_hash == doc.spec_hash:
        chosen = library
        if source is not None:
            doc.note = (
                f"The spec file recorded for this run ({name}) {state}; the text below is "
                "from the starter library's spec, which has the run's spec hash."
            )
    elif current is not None:
        chosen = current
        doc.note = (
            f"The spec has changed since this run (spec hash now {current.spec_hash}, "
            f"{doc.spec_hash} when generated); the summary and traits below are the current "
            "ones, not necessarily those the documents were written from."
        )
    else:
        doc.note = (
            f"The spec file this run was generated from ({name}) is no longer available, "
            "so its summary and traits are not shown."
        )
        return doc
    doc.name = chosen.name
    doc.summary = " ".join(chosen.summary.split())
    doc.traits = [(t.id, " ".join(t.statement.split())) for t in chosen.traits]
    return doc


def _gate_state(name: str, setting: Any) -> str | None:
    """How the run set one gate, as `GatePolicy.describe()` wrote it: None for a setting of
    another shape (shown as JSON instead)."""
    if isinstance(setting, str) and ":" in setting:
        return setting.split(":", 1)[0].strip()  # "enforced", "relaxed (measured, ...)"
    if name == "heuristics" and isinstance(setting, dict) and "enforced" in setting:
        enforced = ", ".join(map(str, setting.get("enforced") or [])) or "none"
        relaxed = ", ".join(map(str, setting.get("relaxed") or []))
        state = f"enforced: {enforced}"
        return f"{state}; relaxed (measured, not enforced): {relaxed}" if relaxed else state
    if name == "judge" and isinstance(setting, dict) and "mode" in setting:
        model = f" `{setting['model']}`" if setting.get("model") else ""
        mode = str(setting["mode"])
        state = {
            "enforce": f"enforced, by{model}" if model else "enforced",
            "advisory": f"advisory (verdicts recorded, not enforced), by{model}",
        }.get(mode, mode)
        note = str(setting.get("note") or "")
        return f"{state}: {note}" if note else state
    return None


def _gates(manifest: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(name, description) of the gates the run used, in the order they run, each with how it
    was set. The manifest may list names or map names to a setting
    (true/false, a description from `GatePolicy.describe()`, or a configuration)."""
    gates = (manifest or {}).get("gates")
    rows: list[tuple[str, str]] = []
    if isinstance(gates, list):
        for name in gates:
            rows.append((str(name), GATE_DESCRIPTIONS.get(str(name), "")))
    elif isinstance(gates, dict):
        for name, setting in gates.items():
            if setting is False or str(name) in _disabled_gates(manifest):
                continue
            description = GATE_DESCRIPTIONS.get(str(name), "")
            state = _gate_state(str(name), setting)
            if state is not None:
                description = f"**{state}**: {description}" if description else state
            elif setting is not True:
                detail = json.dumps(setting, sort_keys=True, ensure_ascii=False)
                description = f"{description} (settings: {detail})" if description else detail
            rows.append((str(name), description))
    # In the order the gates run (manifest.json is written with sorted keys); unknown names last.
    order = list(GATE_DESCRIPTIONS)
    rows.sort(key=lambda row: order.index(row[0]) if row[0] in order else len(order))
    return rows


def _disabled_gates(manifest: Mapping[str, Any] | None) -> list[str]:
    gates = (manifest or {}).get("gates")
    if isinstance(gates, dict):
        return [
            str(name)
            for name, setting in gates.items()
            if setting is False or (isinstance(setting, dict) and setting.get("mode") == "off")
        ]
    return []


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


_ORDER = [
    "license",
    "language",
    "task_categories",
    "size_categories",
    "pretty_name",
    "tags",
    "configs",
    "dataset_info",
]


def _cell(value: object) -> str:
    """A value safe inside a Markdown table cell."""
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|") or " "


def _num(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = _cell
    env.filters["num"] = _num
    env.globals["pct"] = _pct
    return env


def _sorted_counts(counter: Mapping[Any, int]) -> list[tuple[Any, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))


def _mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _run_facts(manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    """The manifest's fields the card shows, each checked for shape: a manifest written by
    another version of the tool must not break the build."""
    m = manifest or {}
    counts = _mapping(m.get("counts"))
    usage = _mapping(m.get("usage"))
    cost = m.get("cost_usd")
    return {
        "status": m.get("status") if isinstance(m.get("status"), str) else None,
        "target": counts.get("target") if isinstance(counts.get("target"), int) else None,
        "run_templates": _mapping(m.get("template_versions")),
        "manifest_archetypes": [a for a in (m.get("archetypes") or []) if isinstance(a, dict)],
        "usage": {str(k): v for k, v in usage.items() if isinstance(v, int | float)},
        "cost": cost if m.get("price_known") and isinstance(cost, int | float) else None,
        "tiny_run": m.get("provider") == "local" or m.get("model") == TINY_MODEL,
    }


def render_card(context: CardContext) -> str:
    """README.md for the dataset folder: YAML metadata valid for the Hub, then the card body."""
    manifest = _scrub_deep(context.manifest) if context.manifest else None
    stats = context.stats
    archetypes = describe_archetypes(manifest, stats)
    archetype_ids = [a.id for a in archetypes] or sorted(stats.by_archetype)
    metadata = card_metadata(context, archetype_ids)
    header = metadata.to_yaml(original_order=_ORDER)
    split_names = [s.name for s in context.splits]
    sample = stats.sample_texts
    distinct = distinct_ns(sample, (1, 2))
    facts = _run_facts(manifest)
    judging = context.judging or _judging_from_stats(context.manifest, stats)
    body = (
        _environment()
        .get_template("card.md.j2")
        .render(
            **facts,
            header=header,
            title=pretty_name(archetype_ids),
            judge_lines=[scrub(line) for line in judging.card_lines()],
            manifest=manifest or {},
            has_manifest=manifest is not None,
            stats=stats,
            tiny_writer=stats.tiny_writer or facts["tiny_run"],
            tiny_judge=stats.tiny_judge,
            archetypes=archetypes,
            splits=context.splits,
            split_names=split_names,
            split_archetype=stats.by_split_archetype,
            fractions=context.fractions,
            total=stats.documents,
            tokenizer=context.tokenizer,
            by_archetype=_sorted_counts(stats.by_archetype),
            by_genre=_sorted_counts(stats.by_genre),
            by_setting=_sorted_counts(stats.by_setting),
            by_narrator=_sorted_counts(stats.by_narrator),
            by_trait=sorted(stats.by_trait.items()),
            rejects=_sorted_counts(context.rejects),
            rejected_total=sum(context.rejects.values()),
            focus=[(score, stats.focus.get(score, 0)) for score in range(1, 6)],
            trait_scores=[(score, stats.trait_scores.get(score, 0)) for score in range(1, 6)],
            judged=stats.documents - stats.not_judged,
            flags=[(scrub(k), v) for k, v in stats.flags.top(TOP)],
            flags_exact=stats.flags.exact,
            distinct_1=distinct[1],
            distinct_2=distinct[2],
            sample_size=len(sample),
            openings=[(scrub(k), v) for k, v in stats.openings.top(TOP)],
            openings_exact=stats.openings.exact,
            distinct_openings=len(stats.openings.counts),
            similarity=[
                (f"{i / 10:.1f}-{(i + 1) / 10:.1f}", n) for i, n in enumerate(stats.similarity_bins)
            ],
            similarity_measured=stats.documents - stats.similarity_missing,
            ngram_mean=(stats.ngram_sum / stats.ngram_count) if stats.ngram_count else None,
            ngram_max=stats.ngram_max,
            ai_names=_sorted_counts(stats.ai_names)[:TOP],
            distinct_ai_names=len(stats.ai_names),
            writers=[((scrub(p), scrub(m)), n) for (p, m), n in _sorted_counts(stats.writers)],
            judges=[(scrub(m), n) for m, n in _sorted_counts(stats.judges)],
            template_versions=[(scrub(v), n) for v, n in _sorted_counts(stats.template_versions)],
            spec_hashes=sorted(stats.spec_hashes.items()),
            gates=_gates(manifest),
            disabled_gates=_disabled_gates(manifest),
            features=[
                (name, _feature_type(feature), COLUMN_DESCRIPTIONS.get(name, ""))
                for name, feature in context.features.items()
            ],
            formats=context.formats,
            shard_rows=context.shard_rows,
            license=context.license,
            notes=context.notes,
        )
    )
    text = scrub(body)
    check_card(text, split_names)
    return text


def _judging_from_stats(manifest: dict[str, Any] | None, stats: CorpusStats) -> JudgeCheck:
    """Which judge checked the corpus, from the manifest and the statistics (a verdict that
    failed but was kept is not counted there)."""
    judging = JudgeCheck.start(manifest)
    judging.documents = stats.documents
    judging.unjudged = stats.not_judged
    judging.models.update(stats.judges)
    return judging


def _feature_type(feature: Any) -> str:
    from datasets import List, Value

    if isinstance(feature, Value):
        return feature.dtype
    if isinstance(feature, List):
        inner = feature.feature
        if isinstance(inner, dict):
            fields = ", ".join(f"{k}: {_feature_type(v)}" for k, v in inner.items())
            return f"list of {{{fields}}}"
        return f"list of {_feature_type(inner)}"
    return type(feature).__name__


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
