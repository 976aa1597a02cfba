"""The shipped CloudFormation template of docs/events/, read with CloudFormation's short forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

EVENTS = Path(__file__).parents[2] / "docs" / "events"


class CfnLoader(yaml.SafeLoader):
    """CloudFormation's short forms (!Ref, !GetAtt, !Sub) as their long forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node)
    else:
        value = loader.construct_mapping(node)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def cloudformation() -> dict[str, Any]:
    return dict(yaml.load((EVENTS / "cloudformation.yaml").read_text(), Loader=CfnLoader))  # noqa: S506
