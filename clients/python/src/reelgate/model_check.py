"""A job's input checked against its model's catalog entry (``GET /v1/models/{id}``) before anything is sent: the
files it needs, each parameter against its JSON Schema (types, ranges, lengths, enumerations, the resolution grid).
The API checks again and has the last word."""

from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Mapping, Optional

_RESOLUTION = re.compile(r"^(\d{1,5})x(\d{1,5})$")


def parameter_schemas(model: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    return dict((model.get("parameters") or {}).get("properties") or {})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def rule_broken(schema: Mapping[str, Any], value: Any) -> Optional[str]:
    """Why ``value`` breaks ``schema``, as the end of a sentence about the field; None when it does not."""
    if "enum" in schema:
        allowed = schema["enum"]
        return None if value in allowed else "must be one of " + ", ".join(repr(v) for v in allowed)
    kind = schema.get("type")
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if kind in ("integer", "number"):
        whole = kind == "integer"
        ok = (
            _is_number(value)
            and (not whole or float(value).is_integer())
            and (lo is None or value >= lo)
            and (hi is None or value <= hi)
            and (not schema.get("multipleOf") or value % schema["multipleOf"] == 0)
        )
        if ok:
            return None
        bounds = f" from {lo} to {hi}" if lo is not None and hi is not None else ""
        multiple = f", a multiple of {schema['multipleOf']}" if schema.get("multipleOf") else ""
        return f"must be {'an integer' if whole else 'a number'}{bounds}{multiple}"
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "string":
        if not isinstance(value, str):
            return "must be a string"
        if schema.get("maxLength") is not None and len(value) > schema["maxLength"]:
            return f"must have at most {schema['maxLength']} characters"
        if schema.get("minLength") is not None and len(value) < schema["minLength"]:
            return f"must have at least {schema['minLength']} characters"
        grid = schema.get("x-resolution")
        return _resolution_broken(grid, value) if grid else None
    return None


def _resolution_broken(grid: Mapping[str, Any], value: str) -> Optional[str]:
    rule = (
        f"must be WIDTHxHEIGHT, each side a multiple of {grid['multiple_of']} from {grid['min_side']} to {grid['max_side']}"
        + (f", at most {grid['max_pixels']} pixels" if grid.get("max_pixels") else "")
    )
    m = _RESOLUTION.match(value)
    if not m:
        return rule
    sides = [int(m.group(1)), int(m.group(2))]
    on_grid = all(grid["min_side"] <= s <= grid["max_side"] and s % grid["multiple_of"] == 0 for s in sides)
    small = not grid.get("max_pixels") or sides[0] * sides[1] <= grid["max_pixels"]
    return None if on_grid and small else rule


def check_input(model: Mapping[str, Any], job_input: Mapping[str, Any]) -> List[Dict[str, str]]:
    """The problems of ``job_input`` for ``model`` as ``{"field", "message"}``: missing required files, files the
    model does not take, unknown parameters, values outside their schema. Empty when the input may be sent."""
    issues: List[Dict[str, str]] = []
    inputs: Mapping[str, Any] = model.get("inputs") or {}
    schemas = parameter_schemas(model)
    for name, spec in inputs.items():
        if spec and spec.get("required") and job_input.get(name) is None:
            issues.append({"field": f"input.{name}", "message": f"is required by {model.get('id')}"})
    for name, value in job_input.items():
        if value is None or name in inputs or name == "loras":
            continue
        schema = schemas.get(name)
        if schema is None:
            takes = ", ".join([*inputs.keys(), *schemas.keys()])
            issues.append({"field": f"input.{name}", "message": f"is not something {model.get('id')} takes (it takes {takes})"})
            continue
        broken = rule_broken(schema, value)
        if broken:
            issues.append({"field": f"input.{name}", "message": broken})
    return issues
