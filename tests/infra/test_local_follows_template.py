"""The local stack is provisioned from the synthesized template: change infra/, re-synth, and it follows."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.synth import synth
from taskrail.local.moto_hooks import LOCAL_MOTO_CONFIG
from taskrail.local.provision import REGION, provision


def test_a_changed_gsi_in_infra_reaches_the_local_table_with_no_other_edit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # Given the storage construct declares its status index under another name
    from infra.constructs import storage

    monkeypatch.setattr(storage, "STATUS_INDEX", "status-createdAt-v2")

    # When the app is re-synthesized and the local services provisioned from that template
    template_path = synth(tmp_path, force=True)
    template = json.loads(template_path.read_text())
    with mock_aws(config=LOCAL_MOTO_CONFIG):
        resources, _ = provision(
            template, lambda s: boto3.client(s, region_name=REGION), stack_name="taskrail", cdk_out=str(tmp_path)
        )
        table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=resources.ref("TasksTable"))

    # Then the local table has exactly the indexes the template declares
    names = {index["IndexName"] for index in table["Table"]["GlobalSecondaryIndexes"]}
    assert names == {"userId-createdAt", "status-createdAt-v2"}


def test_synth_is_skipped_when_no_source_changed(template_path: Path):
    before = template_path.stat().st_mtime_ns

    again = synth()

    assert again == template_path
    assert again.stat().st_mtime_ns == before
