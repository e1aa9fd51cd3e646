"""The one YAML loader of the project: PyYAML's safe loader that refuses duplicate keys, aliases and control text.

Plain ``yaml.safe_load`` keeps the *last* of two equal keys silently, so a copy-paste slip in a price table or
a parameter file changes a number without any warning. :class:`StrictSafeLoader` raises
:class:`DuplicateKeyError` instead, naming the file, the key and both lines.

Every file the project reads (specs, parameter sets, reference tables) is written by people, so it is also
treated as untrusted text (issue 16):

* **no anchors or aliases** (``&a`` / ``*a``, hence no ``<<:`` merge keys): an alias copies a whole subtree, so a
  few hundred bytes can expand to gigabytes (the "billion laughs" or alias bomb). :class:`AliasError` names the
  file and line of the first anchor or alias, before anything is expanded;
* **no control characters** in any string, key or value (:func:`text_problem`): NUL, ESC and the other C0/C1
  controls can only come in through double-quoted escapes (``"\\0"``, ``"\\e"``) and would be stored and
  printed to terminals; tab and line feed are allowed (block scalars);
* **bounded**: a file holds at most :data:`MAX_YAML_BYTES` bytes and a string at most :data:`MAX_TEXT_CHARS`
  characters.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MAX_TEXT_CHARS", "MAX_YAML_BYTES", "AliasError", "DuplicateKeyError", "StrictSafeLoader",
           "UnsafeTextError", "load_yaml", "loads_yaml", "text_problem"]

_MERGE_TAG = "tag:yaml.org,2002:merge"
#: the largest YAML file read (the project's biggest reference table is well under 100 kB)
MAX_YAML_BYTES = 2_000_000
#: the longest string in a YAML file or any other user-supplied text (a title, a reason, a description)
MAX_TEXT_CHARS = 10_000
#: control characters allowed in text: tab and line feed (multi-line descriptions)
_ALLOWED_CONTROLS = frozenset("\t\n")


def text_problem(value: str, max_chars: int = MAX_TEXT_CHARS, *, newlines: bool = True) -> str | None:
    """Why ``value`` is not acceptable plain text, or None.

    Refused: any Unicode control character (category ``Cc``: NUL, ESC, DEL, the C1 range …) except tab and,
    when ``newlines``, line feed; more than ``max_chars`` characters. The message never repeats the value.
    """
    if len(value) > max_chars:
        return f"is {len(value):,} characters long (at most {max_chars:,})"
    for i, ch in enumerate(value):
        if unicodedata.category(ch) == "Cc" and not (ch == "\t" or (newlines and ch == "\n")):
            return f"holds the control character U+{ord(ch):04X} at position {i + 1} (control characters are not allowed)"
    return None


class AliasError(yaml.YAMLError):
    """A YAML anchor or alias: refused before anything is expanded; names the file and the line."""

    def __init__(self, source: str, line: int, mark: Any = None) -> None:
        self.source, self.line = source, line
        self.problem_mark = mark
        super().__init__(f"{source}: line {line}: YAML anchors and aliases (&name, *name, <<:) are not allowed; "
                         "write the values out")


class UnsafeTextError(yaml.YAMLError):
    """A string in a YAML file holds a control character or is too long; names the file and the line."""

    def __init__(self, source: str, line: int, problem: str, mark: Any = None) -> None:
        self.source, self.line = source, line
        self.problem_mark = mark
        super().__init__(f"{source}: line {line}: a string {problem}")


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping holds the same key twice; the message names the file, the key and the lines."""

    def __init__(self, source: str, key: Any, line: int, first_line: int, mark: Any = None) -> None:
        self.source, self.key, self.line, self.first_line = source, key, line, first_line
        self.problem_mark = mark  # as on yaml.MarkedYAMLError, for callers that report the line from it
        super().__init__(f"{source}: line {line}: duplicate key {key!r} (first defined at line {first_line})")


class StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with two equal keys (after YAML's own key conversion), any
    anchor or alias, and strings with control characters or over :data:`MAX_TEXT_CHARS` characters."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise AliasError(str(event.start_mark.name), event.start_mark.line + 1, event.start_mark)
        return super().compose_node(parent, index)

    def construct_scalar(self, node: Any) -> Any:
        value = super().construct_scalar(node)
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                raise UnsafeTextError(str(node.start_mark.name), node.start_mark.line + 1, problem, node.start_mark)
        return value

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
    if len(text) > MAX_YAML_BYTES:
        raise yaml.YAMLError(f"{source}: {len(text):,} characters is too large for a YAML file "
                             f"(at most {MAX_YAML_BYTES:,})")
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
