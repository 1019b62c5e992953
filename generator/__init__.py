"""archetype-corpus: design positive AI archetypes and generate a checked corpus they live in."""

__version__ = "0.1.0"
