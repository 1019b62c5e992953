"""The dataset card: statistics gathered while the dataset is written, and the README.md built
from them, the run's manifest and the archetype specs.

Statistics are streaming and bounded: exact counters for axes whose values come from the specs
(archetype, genre, setting, narrator, trait), a Misra-Gries heavy-hitters sketch for openings
and judge flags (exact while there are fewer distinct values than its capacity), and a fixed-size
sample chosen by hash of the id for distinct-2. Nothing in the card depends on the clock or on
the order of a hash set, so the same run always gives the same card.
"""

from generator.card.archetypes import ArchetypeDoc, describe_archetypes
from generator.card.context import CardContext, SplitInfo
from generator.card.gates import GATE_DESCRIPTIONS
from generator.card.metadata import card_metadata, check_card, pretty_name, size_category
from generator.card.render import COLUMN_DESCRIPTIONS, REDACTED, render_card, scrub

__all__ = [
    "COLUMN_DESCRIPTIONS",
    "GATE_DESCRIPTIONS",
    "REDACTED",
    "ArchetypeDoc",
    "CardContext",
    "SplitInfo",
    "card_metadata",
    "check_card",
    "describe_archetypes",
    "pretty_name",
    "render_card",
    "scrub",
    "size_category",
]
