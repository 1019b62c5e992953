"""What the card says about the gates the run used, and how each was set."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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


def gate_rows(manifest: Mapping[str, Any] | None) -> list[tuple[str, str]]:
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
            if setting is False or str(name) in disabled_gates(manifest):
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


def disabled_gates(manifest: Mapping[str, Any] | None) -> list[str]:
    gates = (manifest or {}).get("gates")
    if isinstance(gates, dict):
        return [
            str(name)
            for name, setting in gates.items()
            if setting is False or (isinstance(setting, dict) and setting.get("mode") == "off")
        ]
    return []
