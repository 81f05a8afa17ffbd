"""The one account, region and partition every emulated service of the local stack lives in."""

from __future__ import annotations

from typing import Final

ACCOUNT_ID: Final = "123456789012"
REGION: Final = "us-east-1"
PARTITION: Final = "aws"
#: CloudFormation's pseudo parameters, as ``Ref`` and ``Fn::Sub`` resolve them locally.
PSEUDO: Final = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::URLSuffix": "amazonaws.com",
}


def arn(service: str, resource: str) -> str:
    """``arn:aws:<service>:us-east-1:123456789012:<resource>``."""
    return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT_ID}:{resource}"
