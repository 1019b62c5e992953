"""Safe YAML loading that remembers where every key and list item came from.

PyYAML's composer gives a node tree with start marks; walking it ourselves lets every later error
point at `file:line:col`. Only the safe constructors run, so `!!python/object` and friends are
rejected as errors, never executed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator.errors import Problem

JsonPath = tuple[str | int, ...]

_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}

# Guards against alias bombs ("billion laughs"): a spec is small, so this is generous.
MAX_NODES = 200_000


@dataclass
class LocatedYaml:
    """Plain Python data plus the 1-based (line, col) of every mapping key and list item."""

    path: Path
    data: Any
    positions: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, json_path: JsonPath) -> tuple[int, int]:
        """Position of the deepest known ancestor of `json_path` (the file start if none)."""
        probe = tuple(json_path)
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (1, 1))

    def problem(self, json_path: JsonPath, message: str) -> Problem:
        line, col = self.locate(json_path)
        return Problem(self.path, line, col, message)


class YamlLoadError(Exception):
    """The file could not be turned into data; carries the located problems."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def load_located(path: Path) -> LocatedYaml:
    """Read `path` as UTF-8 YAML. Raises YamlLoadError with located problems."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise YamlLoadError([Problem(path, 1, 1, "is a directory, expected a YAML file")]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise YamlLoadError([Problem(path, 1, 1, f"cannot read file: {reason}")]) from None
    return parse_located(raw, path)


def parse_located(raw: bytes, path: Path) -> LocatedYaml:
    """Parse YAML bytes; `path` is only used in messages."""
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise YamlLoadError([Problem(path, line, 1, "binary content (NUL byte): not a YAML file")])
    body = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is not content
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        col = exc.start - (body.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlLoadError(
            [Problem(path, line, col, "not valid UTF-8 text: save the file as UTF-8")]
        ) from None

    try:
        # The reader checks characters as it goes: control characters raise here or later.
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise YamlLoadError(
            [Problem(path, line, col, f"character {exc.character!r} is not allowed in YAML")]
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlLoadError(
                [Problem(path, 1, 1, "file is empty: expected a mapping of archetype fields")]
            )
        walker = _Walker(path, loader)
        data = walker.convert(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = " ".join(x for x in (exc.context, exc.problem) if x) or "invalid YAML"
        raise YamlLoadError([Problem(path, line, col, f"invalid YAML: {detail}")]) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise YamlLoadError(
            [Problem(path, line, col, f"character {exc.character!r} is not allowed in YAML")]
        ) from None
    except RecursionError:
        raise YamlLoadError(
            [Problem(path, 1, 1, "nested too deeply, or an alias refers to itself: not a spec")]
        ) from None
    except yaml.YAMLError as exc:
        raise YamlLoadError([Problem(path, 1, 1, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if walker.problems:
        raise YamlLoadError(walker.problems)
    return LocatedYaml(path, data, walker.positions)


class _Walker:
    """Turns composed nodes into Python values while recording positions."""

    def __init__(self, path: Path, loader: yaml.SafeLoader):
        self.path = path
        self.loader = loader
        self.positions: dict[JsonPath, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.visited = 0

    def _pos(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def convert(self, node: yaml.Node, at: JsonPath) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            line, col = self._pos(node)
            raise YamlLoadError(
                [Problem(self.path, line, col, "too many nodes (alias expansion?): not a spec")]
            )
        if not at:
            self.positions[()] = self._pos(node)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
            line, col = self._pos(node)
            self.problems.append(
                Problem(self.path, line, col, f"tag {node.tag!r} is not allowed in a spec")
            )
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, at)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                self.positions[(*at, index)] = self._pos(child)
                items.append(self.convert(child, (*at, index)))
            return items
        # Scalars go through the safe constructor: it resolves ints, bools, dates and raises
        # a ConstructorError (a MarkedYAMLError) for tags such as !!python/object.
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            line, col = self._pos(node)
            self.problems.append(Problem(self.path, line, col, f"{exc.problem or exc}"))
            return None
        except ValueError as exc:  # e.g. an integer longer than Python's 4,300-digit limit
            line, col = self._pos(node)
            self.problems.append(Problem(self.path, line, col, f"value cannot be read: {exc}"))
            return None

    def _mapping(self, node: yaml.MappingNode, at: JsonPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line, col = self._pos(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append(
                    Problem(self.path, line, col, "merge keys (<<) are not supported in specs")
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(Problem(self.path, line, col, "keys must be plain strings"))
                continue
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str):
                self.problems.append(
                    Problem(self.path, line, col, f"key {key!r} must be a string (quote it)")
                )
                key = str(key)
            if key in result:
                self.problems.append(Problem(self.path, line, col, f"duplicate key '{key}'"))
                continue
            self.positions[(*at, key)] = (line, col)
            result[key] = self.convert(value_node, (*at, key))
        return result
