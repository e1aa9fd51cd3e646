"""The one YAML loader of the project: PyYAML's safe loader that refuses duplicate mapping keys.

Plain ``yaml.safe_load`` keeps the *last* of two equal keys silently, so a copy-paste slip in a price table or
a parameter file changes a number without any warning. :class:`StrictSafeLoader` raises
:class:`DuplicateKeyError` instead, naming the file, the key and both lines. Keys merged in with ``<<:`` are
not duplicates (YAML lets explicit keys override merged ones).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DuplicateKeyError", "StrictSafeLoader", "load_yaml", "loads_yaml"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping holds the same key twice; the message names the file, the key and the lines."""

    def __init__(self, source: str, key: Any, line: int, first_line: int, mark: Any = None) -> None:
        self.source, self.key, self.line, self.first_line = source, key, line, first_line
        self.problem_mark = mark  # as on yaml.MarkedYAMLError, for callers that report the line from it
        super().__init__(f"{source}: line {line}: duplicate key {key!r} (first defined at line {first_line})")


class StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with two equal keys (after YAML's own key conversion)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base constructor reports it
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise DuplicateKeyError(str(key_node.start_mark.name), key, line, first, key_node.start_mark)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def loads_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML text strictly; ``source`` names the text in error messages (a file name)."""
    loader = StrictSafeLoader(text)
    loader.name = source  # the reader's name is what every error mark (and DuplicateKeyError) reports
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_yaml(path: str | os.PathLike[str]) -> Any:
    """Read and parse a UTF-8 YAML file strictly (I/O and decoding errors propagate unchanged)."""
    path = Path(path)
    return loads_yaml(path.read_text(encoding="utf-8"), str(path))
