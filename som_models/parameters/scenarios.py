"""Named scenarios of a calculation document: overrides applied to a copy of the document (``scenarios.<name>``).

A scenario is written as::

    scenarios:
      pessimistic:
        description: "lower success, lower effects, dearer course"
        set:   {success_rate.value: 0.08, "costs[0].amount": -70000, discounting: none}
        scale: {consequences: 0.8, prices.kontanthjaelp_weeks: 0.9, costs: 1.1}

``set`` replaces the value at a **path** into the document: keys separated by ``.``, list elements by ``[k]``
(``costs[0].amount``, ``consequences.shelter_nights.units[2]``, ``success_rate.value``). Every step but the last
must exist in the document; the last may add a key to a mapping (the result is validated strictly, so an unknown
key is still an error). ``scale`` multiplies by a factor ``≥ 0`` one of a fixed set of **targets**:

* ``success_rate`` — ``value`` and ``se``;
* ``consequences`` or ``consequences.<item>`` — ``units`` and ``se``, and the course-year ``units`` and ``se``;
* ``prices`` or ``prices.<item>`` — every payer's amount (a committee split's amounts too);
* ``costs``, ``avoided_costs``, ``fixed_costs`` — every line's ``amount`` (and ``range``).

``set`` is applied first, then ``scale``. ``scenarios`` itself cannot be overridden. The result is then
validated as a whole document by :func:`som_models.parameters.schema.parse_parameter_set`; every error names the
scenario and the path. The input document is never modified.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from som_models.parameters.schema import ParameterError

#: the scale targets without an item (``consequences`` and ``prices`` also take ``.<item>``)
SCALE_TARGETS = ("success_rate", "consequences", "prices", "costs", "avoided_costs", "fixed_costs")
_STEP = re.compile(r"^([^\[\]]+)((?:\[\d+\])*)$")


def _tokens(path: str, where: str) -> list[str | int]:
    """``costs[0].amount`` → ``['costs', 0, 'amount']`` (an error naming ``where`` when malformed)."""
    out: list[str | int] = []
    for part in path.split("."):
        m = _STEP.match(part)
        if not m:
            raise ParameterError(f"{where}: {path!r} is not a path (keys separated by '.', list elements as [k])")
        out.append(m.group(1))
        out.extend(int(k) for k in re.findall(r"\[(\d+)\]", m.group(2)))
    return out


def _show(tokens: list[str | int]) -> str:
    text = ""
    for t in tokens:
        text += f"[{t}]" if isinstance(t, int) else (f".{t}" if text else t)
    return text


def _set(doc: dict[str, Any], path: str, value: Any, where: str) -> None:
    tokens = _tokens(path, where)
    if tokens[0] == "scenarios":
        raise ParameterError(f"{where}: a scenario cannot override scenarios")
    node: Any = doc
    for n, tok in enumerate(tokens):
        last = n == len(tokens) - 1
        here = _show(tokens[:n + 1])
        if isinstance(tok, int):
            if not isinstance(node, list):
                raise ParameterError(f"{where}: {_show(tokens[:n])} is not a list in the document")
            if tok >= len(node):
                raise ParameterError(f"{where}: {here} does not exist ({_show(tokens[:n])} has {len(node)} element(s))")
        else:
            if not isinstance(node, dict):
                raise ParameterError(f"{where}: {_show(tokens[:n]) or 'document'} is not a mapping in the document")
            if tok not in node and not last:
                raise ParameterError(f"{where}: {here} does not exist in the document")
        if last:
            node[tok] = copy.deepcopy(value)
        else:
            node = node[tok]


def _times(x: Any, f: float, where: str) -> Any:
    """``x × f`` for a number, element-wise for a list of numbers, value-wise for a mapping of numbers."""
    if isinstance(x, bool):
        raise ParameterError(f"{where}: cannot scale {x!r}")
    if isinstance(x, (int, float)):
        return x * f
    if isinstance(x, list):
        return [_times(v, f, where) for v in x]
    if isinstance(x, dict):
        return {k: _times(v, f, where) for k, v in x.items()}
    raise ParameterError(f"{where}: cannot scale {x!r}")


def _scale_profile(entry: Any, f: float, where: str) -> Any:
    if isinstance(entry, list):
        return _times(entry, f, where)
    if not isinstance(entry, dict):
        raise ParameterError(f"{where}: expected a consequence profile")
    out = dict(entry)
    for key in ("units", "se"):
        if key in out:
            out[key] = _times(out[key], abs(f) if key == "se" else f, f"{where}.{key}")
    if isinstance(out.get("course"), dict):
        out["course"] = _scale_profile(out["course"], f, f"{where}.course")
    return out


def _scale_price(entry: Any, f: float, where: str) -> Any:
    if not isinstance(entry, dict):
        raise ParameterError(f"{where}: expected a price line")
    return {k: (_times(v, f, f"{where}.{k}") if k in ("kommune", "region", "stat") else v) for k, v in entry.items()}


def _scale(doc: dict[str, Any], target: str, factor: Any, where: str) -> None:
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor != factor or factor < 0 \
            or factor == float("inf"):
        raise ParameterError(f"{where}: a scale factor must be a finite number ≥ 0, got {factor!r}")
    f = float(factor)
    head, _, item = target.partition(".")
    if head not in SCALE_TARGETS or (item and head not in ("consequences", "prices")):
        raise ParameterError(f"{where}: unknown scale target (allowed: {', '.join(SCALE_TARGETS)}, "
                             "consequences.<item>, prices.<item>)")
    if head not in doc:
        raise ParameterError(f"{where}: the document has no {head}")
    if head == "success_rate":
        sr = doc["success_rate"]
        if not isinstance(sr, dict):
            raise ParameterError(f"{where}: success_rate is not a mapping")
        doc["success_rate"] = {k: (_times(v, f, f"{where}.{k}") if k in ("value", "se") else v) for k, v in sr.items()}
        return
    if head in ("consequences", "prices"):
        section = doc[head]
        if not isinstance(section, dict):
            raise ParameterError(f"{where}: {head} is not a mapping")
        if item and item not in section:
            raise ParameterError(f"{where}: {head}.{item} does not exist in the document")
        scale_one = _scale_profile if head == "consequences" else _scale_price
        for name in ([item] if item else list(section)):
            section[name] = scale_one(section[name], f, f"{where} ({head}.{name})")
        return
    lines = doc[head]
    if not isinstance(lines, list):
        raise ParameterError(f"{where}: {head} is not a list")
    for k, line in enumerate(lines):
        if not isinstance(line, dict):
            raise ParameterError(f"{where}: {head}[{k}] is not a mapping")
        for key in ("amount", "range"):
            if key in line:
                line[key] = _times(line[key], f, f"{where} ({head}[{k}].{key})")


def apply_scenario(base: Mapping[str, Any], spec: Any, path: str) -> dict[str, Any]:
    """A deep copy of ``base`` with the overrides of one scenario ``spec`` (module docstring); errors name ``path``."""
    if not isinstance(spec, Mapping):
        raise ParameterError(f"{path}: expected a mapping {{description, set, scale}}, got {type(spec).__name__}")
    for key in spec:
        if key not in ("description", "set", "scale"):
            raise ParameterError(f"{path}.{key}: unknown key (allowed: description, scale, set)")
    if not spec.get("set") and not spec.get("scale"):
        raise ParameterError(f"{path}: a scenario needs set and/or scale (it would equal the base)")
    doc = copy.deepcopy(dict(base))
    for key in ("set", "scale"):
        overrides = spec.get(key)
        if overrides is None:
            continue
        if not isinstance(overrides, Mapping):
            raise ParameterError(f"{path}.{key}: expected a mapping {{path: value}}")
    for target, value in (spec.get("set") or {}).items():
        _set(doc, str(target), value, f"{path}.set.{target}")
    for target, factor in (spec.get("scale") or {}).items():
        _scale(doc, str(target), factor, f"{path}.scale.{target}")
    return doc
