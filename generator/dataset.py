"""records.jsonl -> a dataset folder in the Hub's repository layout: parquet shards, the card.

Layout of RUN/dataset/ (the folder `archetypes publish` uploads as it is):

    README.md                                     the dataset card (YAML metadata + body)
    data/<split>-NNNNN-of-NNNNN.parquet           shards, at most --shard-rows rows each
    jsonl/<split>.jsonl                           only with --format jsonl, same columns

One streaming pass: records are read line by line, converted to rows, buffered per split up to
one row group and written with pyarrow's ParquetWriter; the card's statistics are gathered in
the same pass. Shards are written under provisional names and renamed once the total per split is
known, so no second pass over the records is needed. Memory is bounded by one row group per
split plus fixed-size sketches (see generator/card.py), whatever the corpus size.

The whole folder is built in RUN/dataset.tmp-<pid> and then moved over RUN/dataset, so a reader
(or a publish) never sees half a dataset. Rebuilding the same run gives byte-identical files:
rows keep the order of records.jsonl, nothing depends on the clock, and the parquet writer's
options are pinned.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import warnings
from array import array
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features, List, Value

from generator import card
from generator.errors import ConfigError, OutputError, UserError
from generator.judging import JudgeCheck
from generator.records import Record, iter_records
from generator.rundir import LOCK, MANIFEST, RECORDS, REJECTS
from generator.tokens import DEFAULT_ENCODING

DATASET_DIR = "dataset"
DEFAULT_SHARD_ROWS = 50_000
ROW_GROUP_ROWS = 5_000
# A row group is also closed early once its texts reach this size, so very long documents do
# not make one buffer huge. Both limits are constants: row-group boundaries stay deterministic.
ROW_GROUP_TEXT_BYTES = 64 * 1024 * 1024
DEFAULT_LICENSE = "cc-by-4.0"
FORMATS = ("parquet", "jsonl")
TRAIN = "train"

# The columns, in order. `text` is the document exactly as records.jsonl holds it.
FEATURES = Features(
    {
        "text": Value("string"),
        "id": Value("string"),
        "archetype_id": Value("string"),
        "archetype_version": Value("string"),
        "trait_focus": Value("string"),
        "genre": Value("string"),
        "setting": Value("string"),
        "narrator": Value("string"),
        "title": Value("string"),
        "n_words": Value("int32"),
        "n_tokens": Value("int32"),
        "language": Value("string"),
        "writer_model": Value("string"),
        "judge_model": Value("string"),
        "judge_focus_score": Value("int8"),
        "judge_trait_scores": List({"trait": Value("string"), "score": Value("int8")}),
        "judge_flags": List(Value("string")),
        "repeated_ngram_ratio": Value("float64"),
        "max_similarity": Value("float64"),
        "revised": Value("bool"),
        "seed": Value("int64"),
        "created_at": Value("string"),
        "spec_hash": Value("string"),
        "ai_name": Value("string"),
        "situation": Value("string"),
        "provider": Value("string"),
        "template_version": Value("string"),
        "premise": Value("string"),
    }
)
# Carries the Features as schema metadata too, so `datasets` reads back exactly these types.
SCHEMA: pa.Schema = FEATURES.arrow_schema

# Pinned so that the same rows always give the same bytes (in the same environment).
PARQUET_OPTIONS: dict[str, Any] = {
    "version": "2.6",
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "data_page_version": "1.0",
    "store_schema": True,
    "write_page_index": False,
    # Content-defined pages: re-uploading a slightly changed shard to Xet storage moves only
    # the changed chunks. Deterministic, like every other option here.
    "use_content_defined_chunking": True,
}

_SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_LICENSE = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}$")


# ---------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class BuildOptions:
    """What `archetypes build` was asked for."""

    splits: Mapping[str, float] = field(default_factory=dict)
    tokenizer: str = DEFAULT_ENCODING
    formats: tuple[str, ...] = ("parquet",)
    shard_rows: int = DEFAULT_SHARD_ROWS
    license: str = DEFAULT_LICENSE


def parse_splits(values: Sequence[str]) -> dict[str, float]:
    """`["validation=0.05", "test=0.02"]` -> {"test": 0.02, "validation": 0.05}.

    `train` takes whatever the named splits leave, so it cannot be given a fraction itself.
    """
    splits: dict[str, float] = {}
    for value in values:
        name, sep, fraction_text = value.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"--split {value}: expected NAME=FRACTION, e.g. validation=0.05")
        if not _SPLIT_NAME.match(name):
            raise ConfigError(
                f"--split {value}: '{name}' is not a split name; use lowercase letters, digits "
                "and underscores, e.g. validation or test"
            )
        if name == TRAIN:
            raise ConfigError(
                f"--split {value}: train gets every document the other splits leave; "
                "give the other splits' fractions instead"
            )
        if name in splits:
            raise ConfigError(f"--split {value}: split '{name}' is given twice")
        try:
            fraction = float(fraction_text)
        except ValueError:
            raise ConfigError(f"--split {value}: '{fraction_text}' is not a number") from None
        if not 0 < fraction < 1:
            raise ConfigError(f"--split {value}: the fraction must be between 0 and 1")
        splits[name] = fraction
    if sum(splits.values()) >= 1:
        raise ConfigError("--split: the fractions add up to 1 or more, leaving nothing for train")
    return dict(sorted(splits.items()))


def check_options(options: BuildOptions) -> None:
    if options.shard_rows < 1:
        raise ConfigError("--shard-rows must be at least 1")
    for fmt in options.formats:
        if fmt not in FORMATS:
            raise ConfigError(f"--format {fmt}: choose from {', '.join(FORMATS)}")
    if not _LICENSE.match(options.license):
        raise ConfigError(
            f"--license {options.license}: use a license id from the Hub's list, e.g. cc-by-4.0, "
            "apache-2.0, mit or other"
        )
    parse_splits([f"{name}={fraction}" for name, fraction in options.splits.items()])


def split_point(doc_id: str) -> float:
    """A uniform number in [0, 1) fixed by the document id alone."""
    digest = hashlib.sha256(f"archetype-corpus/split/{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(doc_id: str, splits: Mapping[str, float]) -> str:
    """The split of one document: the id's point against the cumulative fractions.

    The named splits take consecutive intervals from 0 in name order and train the rest, so a
    document's split depends only on its id and the --split options: rebuilding never moves it,
    and documents added to the run never move the ones already there. Because every archetype's
    documents are spread uniformly over [0, 1), each archetype is split in the same proportions
    in expectation (stratified without keeping any state); the card shows the counts per
    archetype and split.
    """
    point = split_point(doc_id)
    bound = 0.0
    for name in sorted(splits):
        bound += splits[name]
        if point < bound:
            return name
    return TRAIN


# ---------------------------------------------------------------------------------------------
# Tokenizers


@dataclass(frozen=True)
class TokenCounter:
    label: str  # how the card names it
    count: Callable[[str], int]


def token_counter(name: str) -> TokenCounter:
    """o200k_base / cl100k_base (bpe-openai, offline), or a path to a local tokenizer.json."""
    from generator.tokens import encoding

    with warnings.catch_warnings():
        # bpe-openai reads its tables (even on import) with importlib.resources' deprecated
        # open_binary.
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai

        known = bpe_openai.list_encoding_names()
        enc = encoding(name) if name in known else None

    if enc is not None:

        def count_bpe(text: str) -> int:
            # Text that looks like a special token is counted as the plain text it is.
            return len(enc.encode(text, disallowed_special=()))

        return TokenCounter(f"{name} via bpe-openai", count_bpe)

    path = Path(name).expanduser()
    looks_like_path = path.suffix == ".json" or os.sep in name or path.exists()
    if not looks_like_path:
        raise ConfigError(
            f"--tokenizer {name}: unknown tokenizer; use o200k_base, cl100k_base "
            f"(or {', '.join(sorted(known))}), "
            "or a path to a tokenizer.json"
        )
    if not path.is_file():
        raise ConfigError(f"--tokenizer {name}: no such file")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ConfigError(
            f"--tokenizer {name}: reading a tokenizer.json needs the `tokenizers` package; "
            "run `pip install tokenizers`, or use o200k_base"
        ) from None
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exceptions
        raise ConfigError(
            f"--tokenizer {name}: not a tokenizer.json this can read: {exc}"
        ) from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    def count_hf(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    # The file name and content hash, never the local path (it may name the user's home).
    return TokenCounter(f"{path.name} sha256:{digest} via tokenizers", count_hf)


# ---------------------------------------------------------------------------------------------
# Reading the run


def record_to_row(record: Record, n_tokens: int) -> dict[str, Any]:
    """The dataset row for one record; the judge's and the checks' fields become flat columns."""
    judge = record.judge
    checks = record.checks
    return {
        "text": record.text,
        "id": record.id,
        "archetype_id": record.archetype_id,
        "archetype_version": record.archetype_version,
        "trait_focus": record.trait_focus,
        "genre": record.genre,
        "setting": record.setting,
        "narrator": record.narrator,
        "title": record.title,
        "n_words": record.n_words,
        "n_tokens": n_tokens,
        "language": record.language,
        "writer_model": record.writer_model,
        "judge_model": record.judge_model or (judge.model if judge else None),
        "judge_focus_score": judge.focus_score if judge else None,
        "judge_trait_scores": (
            [{"trait": t.trait, "score": t.score} for t in judge.trait_scores] if judge else []
        ),
        "judge_flags": [*judge.anti_markers, *judge.backfire_flags] if judge else [],
        "repeated_ngram_ratio": checks.repeated_ngram_ratio if checks else None,
        "max_similarity": checks.max_similarity if checks else None,
        "revised": record.revised,
        "seed": record.seed,
        "created_at": record.created_at,
        "spec_hash": record.spec_hash,
        "ai_name": record.ai_name,
        "situation": record.situation,
        "provider": record.provider,
        "template_version": record.template_version,
        "premise": record.premise,
    }


def _check_not_running(run_dir: Path) -> None:
    """Refuse while `archetypes generate` holds the run (its records are still arriving)."""
    lock = run_dir / LOCK
    if not lock.exists():
        return
    with lock.open("r", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = handle.read().strip() or "another process"
            raise UserError(
                f"{run_dir} is in use by {holder}; wait for `archetypes generate` to finish "
                "(or stop it), then build"
            ) from None
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_rejects(run_dir: Path) -> Counter[str]:
    """Rejections by reason, from rejects.jsonl (read line by line)."""
    reasons: Counter[str] = Counter()
    path = run_dir / REJECTS
    if not path.exists():
        return reasons
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n") or not line.strip():
                continue
            try:
                reasons[str(json.loads(line).get("reason", "unknown"))] += 1
            except (json.JSONDecodeError, AttributeError):
                reasons["unreadable-line"] += 1
    return reasons


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------------
# Writing


@dataclass
class SplitSummary:
    name: str
    rows: int = 0
    shards: list[str] = field(default_factory=list)  # paths relative to the dataset folder
    parquet_bytes: int = 0
    arrow_bytes: int = 0  # in-memory Arrow size: what `datasets` calls num_bytes
    tokens: int = 0
    words: int = 0


@dataclass
class BuildResult:
    path: Path
    splits: dict[str, SplitSummary]
    files: list[str]  # every file written, relative to `path`, sorted
    tokenizer: str
    notes: list[str]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.splits.values())


class _SplitWriter:
    """One split's parquet shards (and JSONL file), written a row group at a time."""

    def __init__(self, root: Path, name: str, shard_rows: int, jsonl: bool):
        self.root = root
        self.name = name
        self.shard_rows = shard_rows
        self.summary = SplitSummary(name)
        self.buffer: list[dict[str, Any]] = []
        self.buffer_text_bytes = 0
        self.writer: pq.ParquetWriter | None = None
        self.rows_in_shard = 0
        self.provisional: list[Path] = []
        self.jsonl: IO[str] | None = None
        if jsonl:
            (root / "jsonl").mkdir(exist_ok=True)
            self.jsonl = (root / "jsonl" / f"{name}.jsonl").open("w", encoding="utf-8")

    def add(self, row: dict[str, Any]) -> None:
        self.buffer.append(row)
        self.buffer_text_bytes += len(row["text"])
        self.summary.rows += 1
        if self.jsonl is not None:
            self.jsonl.write(json.dumps(row, ensure_ascii=False) + "\n")
        room = self.shard_rows - self.rows_in_shard
        if (
            len(self.buffer) >= min(ROW_GROUP_ROWS, room)
            or self.buffer_text_bytes >= ROW_GROUP_TEXT_BYTES
        ):
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        if self.writer is None:
            path = self.root / "data" / f"{self.name}-{len(self.provisional):05d}.partial"
            self.provisional.append(path)
            self.writer = pq.ParquetWriter(path, SCHEMA, **PARQUET_OPTIONS)
        table = pa.Table.from_pylist(self.buffer, schema=SCHEMA)
        self.writer.write_table(table, row_group_size=len(self.buffer))
        self.summary.arrow_bytes += table.nbytes
        self.rows_in_shard += len(self.buffer)
        self.buffer = []
        self.buffer_text_bytes = 0
        if self.rows_in_shard >= self.shard_rows:
            self._close_shard()

    def _close_shard(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.rows_in_shard = 0

    def finish(self) -> None:
        """Flush, close, and give every shard its final `-NNNNN-of-NNNNN` name."""
        self.flush()
        self._close_shard()
        if self.jsonl is not None:
            self.jsonl.close()
            self.jsonl = None
        total = len(self.provisional)
        for index, path in enumerate(self.provisional):
            final = path.with_name(f"{self.name}-{index:05d}-of-{total:05d}.parquet")
            path.rename(final)
            self.summary.shards.append(final.relative_to(self.root).as_posix())
            self.summary.parquet_bytes += final.stat().st_size

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            if self.writer is not None:
                self.writer.close()
        if self.jsonl is not None:
            self.jsonl.close()


def build(run_dir: Path, options: BuildOptions | None = None) -> BuildResult:
    """Build RUN/dataset/ from RUN/records.jsonl (replacing any earlier build)."""
    options = options or BuildOptions()
    check_options(options)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    records_path = run_dir / RECORDS
    if not records_path.exists() or records_path.stat().st_size == 0:
        raise UserError(
            f"{run_dir}: no records to build from ({RECORDS} is missing or empty); "
            f"run `archetypes generate --out {run_dir}` first"
        )
    final = run_dir / DATASET_DIR
    if final.exists() and not final.is_dir():
        raise OutputError(f"{final}: exists and is not a directory; move it away and build again")
    _check_not_running(run_dir)
    counter = token_counter(options.tokenizer)
    _remove_stale_temporaries(run_dir)

    temporary = run_dir / f"{DATASET_DIR}.tmp-{os.getpid()}"
    try:
        shutil.rmtree(temporary, ignore_errors=True)
        (temporary / "data").mkdir(parents=True)
        result = _write(run_dir, temporary, options, counter, records_path)
        _replace(temporary, final)
    except OSError as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        raise _disk_error(final, exc) from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    result.path = final
    return result


def _write(
    run_dir: Path,
    root: Path,
    options: BuildOptions,
    counter: TokenCounter,
    records_path: Path,
) -> BuildResult:
    split_names = [TRAIN, *sorted(options.splits)]
    jsonl = "jsonl" in options.formats
    writers = {name: _SplitWriter(root, name, options.shard_rows, jsonl) for name in split_names}
    stats = card.CorpusStats()
    judging = JudgeCheck.start(read_manifest(run_dir), run_dir)
    ids = array("Q")
    stop_at = records_path.stat().st_size
    try:
        for record in iter_records(records_path, stop_at, then="build again"):
            judging.add(record)
            split = assign_split(record.id, options.splits)
            n_tokens = counter.count(record.text)
            writers[split].add(record_to_row(record, n_tokens))
            writers[split].summary.tokens += n_tokens
            writers[split].summary.words += record.n_words
            stats.add(record, split, n_tokens)
            ids.append(int(record.id, 16))
        for writer in writers.values():
            writer.finish()
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise

    if not ids:
        raise UserError(
            f"{run_dir}: no complete records in {RECORDS}; "
            f"run `archetypes generate --out {run_dir}` first"
        )
    _check_unique(ids, records_path)

    notes: list[str] = []
    summaries: dict[str, SplitSummary] = {}
    for name in split_names:
        summary = writers[name].summary
        if summary.rows == 0:
            if jsonl:
                (root / "jsonl" / f"{name}.jsonl").unlink()
            notes.append(
                f"split '{name}' received no documents "
                f"({len(ids)} in all); it is left out of the dataset"
            )
            continue
        summaries[name] = summary

    manifest = read_manifest(run_dir)
    context = card.CardContext(
        manifest=manifest,
        stats=stats,
        rejects=read_rejects(run_dir),
        splits=[
            card.SplitInfo(
                name=s.name,
                rows=s.rows,
                shards=len(s.shards),
                parquet_bytes=s.parquet_bytes,
                arrow_bytes=s.arrow_bytes,
                tokens=s.tokens,
                words=s.words,
            )
            for s in summaries.values()
        ],
        fractions=dict(options.splits),
        license=options.license,
        tokenizer=counter.label,
        features=FEATURES,
        formats=tuple(options.formats),
        shard_rows=options.shard_rows,
        notes=notes,
        judging=judging,
    )
    (root / "README.md").write_text(card.render_card(context), encoding="utf-8")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return BuildResult(
        path=root, splits=summaries, files=files, tokenizer=counter.label, notes=notes
    )


def _check_unique(ids: array, records_path: Path) -> None:
    values = np.sort(np.frombuffer(ids, dtype=np.uint64))
    repeated = values[1:][values[1:] == values[:-1]]
    if repeated.size:
        raise UserError(
            f"{records_path}: document id {int(repeated[0]):016x} appears more than once "
            f"({repeated.size} repeated line(s)); a run never writes an id twice, so the file "
            "was edited or concatenated: remove the repeats, then build again"
        )


def _replace(temporary: Path, final: Path) -> None:
    """Move the new build into place. Between the two renames RUN/dataset briefly does not
    exist; it is never half-written."""
    old = final.with_name(f"{DATASET_DIR}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(temporary, final)
    shutil.rmtree(old, ignore_errors=True)


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Leftovers of a build that was killed: their pid is no longer running."""
    for path in run_dir.glob(f"{DATASET_DIR}.*-*"):
        kind, _, pid_text = path.name.removeprefix(f"{DATASET_DIR}.").partition("-")
        if kind not in ("tmp", "old") or not pid_text.isdigit():
            continue
        if int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _disk_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        why = "the disk is full; free some space and build again"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied (read-only?)"
    else:
        why = exc.strerror or str(exc)
    return OutputError(f"{path}: cannot write the dataset: {why} (the previous build is kept)")


def describe(result: BuildResult) -> list[str]:
    """The lines `archetypes build` prints."""
    lines = [
        f"wrote {result.path} ({result.rows} documents, tokens counted with {result.tokenizer})"
    ]
    for summary in result.splits.values():
        lines.append(
            f"  {summary.name:<12} {summary.rows:>9} rows  {len(summary.shards)} shard(s)  "
            f"{summary.tokens} tokens  {summary.parquet_bytes} bytes"
        )
    lines.extend(f"note: {note}" for note in result.notes)
    return lines
