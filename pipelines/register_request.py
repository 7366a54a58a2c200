"""RegisterModel steps ask only what CreateModelPackage accepts (botocore's model says what)."""

from __future__ import annotations

import json
import logging
from typing import Any

import botocore.loaders
import botocore.model


def register_arguments_the_api_accepts(definition_text: str) -> str:
    """The definition with every RegisterModel step asking only what CreateModelPackage accepts.

    The pipeline service sends a RegisterModel step's Arguments to CreateModelPackage, which
    rejects keys outside its input shape and the empty sections the SDK writes into ModelMetrics
    (``Bias: {}``, ``Explainability: {}``). Keys are checked against botocore's service model
    (the one boto3 validates requests with), recursively through structures, lists and maps;
    expressions are left to be resolved at run time. Empty dicts and lists are dropped inside
    ModelMetrics and DriftCheckBaselines only, where empty means "not given". A dropped key that
    had a value is logged: it is something the SDK meant to send that the API does not know.
    """
    # The model botocore.session.get_session().get_service_model("sagemaker") returns, read by
    # the loader alone: a session would read the AWS configuration (a missing AWS_PROFILE
    # raises), and the build must not depend on it.
    service_model = botocore.model.ServiceModel(
        botocore.loaders.create_loader().load_service_model("sagemaker", "service-2"),
        service_name="sagemaker",
    )
    shape_of_request = service_model.operation_model("CreateModelPackage").input_shape
    optional_sections = ("ModelMetrics", "DriftCheckBaselines")
    dropped: list[str] = []

    def accepted(value: Any, shape: Any, path: str, prune_empty: bool) -> Any:
        if isinstance(value, dict) and any(k == "Get" or k.startswith("Std:") for k in value):
            return value
        if shape.type_name == "structure" and isinstance(value, dict):
            kept = {}
            for key, item in value.items():
                if key not in shape.members:
                    if item not in ({}, [], None):
                        dropped.append(f"{path}.{key}")
                    continue
                prune_item = prune_empty or key in optional_sections
                item = accepted(item, shape.members[key], f"{path}.{key}", prune_item)
                if not (prune_item and item in ({}, [])):
                    kept[key] = item
            return kept
        if shape.type_name == "list" and isinstance(value, list):
            return [accepted(item, shape.member, f"{path}[]", prune_empty) for item in value]
        if shape.type_name == "map" and isinstance(value, dict):
            return {
                key: accepted(item, shape.value, f"{path}.{key}", prune_empty)
                for key, item in value.items()
            }
        return value

    def register_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = []
        for step in steps:
            if step.get("Type") == "RegisterModel":
                found.append(step)
            if step.get("Type") == "Condition":
                branches = step.get("Arguments", {})
                found += register_steps(branches.get("IfSteps", []) + branches.get("ElseSteps", []))
        return found

    definition = json.loads(definition_text)
    for step in register_steps(definition.get("Steps", [])):
        step["Arguments"] = accepted(step["Arguments"], shape_of_request, step["Name"], False)
    if dropped:
        logging.getLogger(__name__).warning(
            "CreateModelPackage does not accept %s; dropped from the definition", dropped
        )
    return json.dumps(definition)
