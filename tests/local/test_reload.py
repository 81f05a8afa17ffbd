"""What the code reloader counts as a template change: everything but the hashes that name a function's asset."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from taskrail.local.reload import SourceWatcher, asset_folder, template_changes


def template(asset: str = "abc123", timeout: int = 30) -> dict[str, Any]:
    return {
        "Resources": {
            "ValidateFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Code": {"S3Bucket": "b", "S3Key": f"{asset}.zip"}, "Timeout": timeout},
                "Metadata": {"aws:asset:path": f"asset.{asset}", "aws:asset:property": "Code", "cdk_nag": "x"},
            },
            "Tasks": {"Type": "AWS::DynamoDB::Table", "Properties": {"BillingMode": "PAY_PER_REQUEST"}},
        },
        "Outputs": {"ApiUrl": {"Value": "u"}},
    }


def test_a_new_asset_alone_is_no_template_change():
    assert template_changes(template("abc123"), template("def456")) == []


def test_a_changed_property_an_added_resource_and_a_changed_section_are_named():
    new = template(timeout=31)
    new["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue"}
    new["Outputs"]["More"] = {"Value": "v"}
    assert template_changes(template(), new) == ["Queue (added)", "ValidateFunction", "Outputs"]
    metadata = copy.deepcopy(template())
    metadata["Resources"]["ValidateFunction"]["Metadata"]["cdk_nag"] = "y"  # not an asset's: a change
    assert template_changes(template(), metadata) == ["ValidateFunction"]


def with_live_alias(base: dict[str, Any], code_hash: str, description: str = "v") -> dict[str, Any]:
    """``base`` with the function's published version and its ``live`` alias, as CDK's currentVersion names them:
    the version's logical id ends in a hash of the function's code (canary deploys, docs/DEPLOY.md)."""
    new = copy.deepcopy(base)
    version = f"ValidateFunctionCurrentVersion1A2B3C4D{code_hash}"
    new["Resources"][version] = {
        "Type": "AWS::Lambda::Version",
        "Properties": {"FunctionName": {"Ref": "ValidateFunction"}, "Description": description},
    }
    new["Resources"]["ValidateFunctionLive"] = {
        "Type": "AWS::Lambda::Alias",
        "Properties": {"FunctionVersion": {"Fn::GetAtt": [version, "Version"]}, "Name": "live"},
    }
    return new


def test_a_new_asset_and_the_version_it_publishes_are_no_template_change():
    # An edited handler: a new asset, so CDK names a new currentVersion (and the alias names it): code, not template
    running = with_live_alias(template("abc123"), "0" * 32)
    edited = with_live_alias(template("def456"), "f" * 32)
    assert template_changes(running, edited) == []
    # a version whose own properties change is a change still
    assert template_changes(running, with_live_alias(template("def456"), "f" * 32, "other")) == [
        "ValidateFunctionCurrentVersion1A2B3C4D"
    ]


def test_the_asset_folder_is_the_staged_one_the_key_names(tmp_path: Path):
    resource = template("def456")["Resources"]["ValidateFunction"]
    assert asset_folder(resource, tmp_path) == tmp_path / "asset.def456"


def test_the_watcher_reports_added_changed_and_removed_files_but_not_bytecode(tmp_path: Path):
    (tmp_path / "lambdas").mkdir()
    handler = tmp_path / "lambdas" / "handler.py"
    handler.write_text("a = 1\n")
    watcher = SourceWatcher([tmp_path / "lambdas"])
    assert watcher.changed() == []
    handler.write_text("a = 22\n")
    (tmp_path / "lambdas" / "__pycache__").mkdir()
    (tmp_path / "lambdas" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "lambdas" / "new.py").write_text("")
    assert watcher.changed() == [str(handler), str(tmp_path / "lambdas" / "new.py")]
    handler.unlink()
    assert watcher.changed() == [str(handler)]
