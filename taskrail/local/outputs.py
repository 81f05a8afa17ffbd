"""The stack's Outputs, locally: the synthesized template's ``Outputs`` resolved against what the local stack
provisioned. A deployed stack is found from the same Outputs (CloudFormation's DescribeStacks, ``taskrail.cli``);
``task_common.contract.Output`` names them, ``infra/stack.py`` declares them.

The REST API is the one resource the local stack does not create in moto: its local API Gateway serves it, so an
output that is the API's URL is the local gateway's URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

REST_API = "AWS::ApiGateway::RestApi"


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            yield value["Ref"]
        for inner in value.values():
            yield from _refs(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _refs(inner)


def stack_outputs(template: Mapping[str, Any], resolve: Callable[[Any], Any], *, api_url: str) -> dict[str, str]:
    """Every output of ``template`` as DescribeStacks gives it (name → value), ``resolve`` turning intrinsics into
    the local resources' names and ARNs; an output that cannot be resolved raises (the local stack lacks it)."""
    rest_apis = {
        logical_id for logical_id, resource in template.get("Resources", {}).items() if resource["Type"] == REST_API
    }
    outputs: dict[str, str] = {}
    for name, output in template.get("Outputs", {}).items():
        value = output["Value"]
        outputs[name] = api_url if rest_apis & set(_refs(value)) else str(resolve(value))
    return outputs
