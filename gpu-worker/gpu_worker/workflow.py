"""ComfyUI workflow templates (`gpu-worker/workflows/<model>.json`) and parameter injection.

A template is `{model, required_files, parameters, workflow}`: `parameters` maps a name to the
`{"node", "input"}` paths it is written to. Values are set on a deep copy of the graph, never by
string replacement, so a prompt containing quotes or braces cannot change the graph.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

WORKFLOWS_DIR = Path(__file__).resolve().parent.parent / "workflows"


class TemplateError(ValueError):
    """A template or a parameter name that does not fit it: a bug on our side, not the user's."""


@lru_cache(maxsize=None)
def _read_template(model: str) -> str:
    path = WORKFLOWS_DIR / f"{model}.json"
    if not path.is_file():
        raise TemplateError(f"no workflow template for model {model!r} at {path}")
    return path.read_text(encoding="utf-8")


def load_template(model: str) -> dict:
    """A fresh copy of the model's template, checked so a bad edit fails loudly at the first job."""
    template = json.loads(_read_template(model))
    validate_template(template)
    return template


def validate_template(template: dict) -> None:
    workflow = template.get("workflow")
    if not isinstance(workflow, dict) or not workflow:
        raise TemplateError("template has no workflow")
    for node_id, node in workflow.items():
        if "class_type" not in node or not isinstance(node.get("inputs"), dict):
            raise TemplateError(f"node {node_id} needs class_type and inputs")
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and value[0] not in workflow:
                raise TemplateError(f"node {node_id} input {name} links to missing node {value[0]}")
    for name, targets in template.get("parameters", {}).items():
        for target in targets:
            node = workflow.get(str(target.get("node")))
            if node is None or target.get("input") not in node["inputs"]:
                raise TemplateError(f"parameter {name} points at missing {target}")


def build_workflow(template: dict, params: dict) -> dict:
    """The API-format graph with `params` written at their paths; unknown names raise TemplateError."""
    known = template.get("parameters", {})
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise TemplateError(f"unknown workflow parameters {unknown}; template accepts {sorted(known)}")
    workflow = copy.deepcopy(template["workflow"])
    for name, value in params.items():
        for target in known[name]:
            node = workflow[str(target["node"])]
            if target["input"] not in node["inputs"]:
                raise TemplateError(f"parameter {name}: node {target['node']} has no input {target['input']}")
            node["inputs"][target["input"]] = value
    return workflow
