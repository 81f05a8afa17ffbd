"""The mutators behind `make mutation` (bench/mutation): what they change, and that they change nothing else."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from bench.mutation import asl, python, template
from bench.mutation.__main__ import sampler
from bench.mutation.common import AreaResult, Mutant, Outcome
from bench.mutation.report import HAND_WRITTEN, area_block, recheck_block, survivors_of, update

CLAIM = {
    "Type": "Task",
    "Resource": "arn:aws:states:::dynamodb:updateItem",
    "Parameters": {
        "TableName": "Tasks",
        "ConditionExpression": "#status = :queued",
        "UpdateExpression": "SET #status = :running",
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": {":queued": {"S": "QUEUED"}, ":running": {"S": "RUNNING"}},
    },
    "ResultPath": "$.claim",
    "Retry": [{"ErrorEquals": ["DynamoDB.ThrottlingException"], "MaxAttempts": 3}],
    "Catch": [
        {"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException", "States.Timeout"], "Next": "Done"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done"},
    ],
    "Next": "Done",
}
DEFINITION: dict[str, Any] = {
    "StartAt": "Claim",
    "States": {
        "Claim": CLAIM,
        "Fan": {
            "Type": "Map",
            "ItemProcessor": {
                "StartAt": "Inner",
                "States": {"Inner": {"Type": "Pass", "ResultPath": None, "End": True}},
            },
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


def by_ident(mutants: list[asl.AslMutant]) -> dict[str, asl.AslMutant]:
    return {m.mutant.ident: m for m in mutants}


def test_asl_mutants_cover_each_operator_once_per_place_and_leave_the_original_alone():
    original = copy.deepcopy(DEFINITION)
    idents = set(by_ident(asl.mutants("wf", DEFINITION)))

    assert idents == {
        "wf/Claim.Catch[0]: delete-catch",
        "wf/Claim.Catch[0]: error-equals drops DynamoDB.ConditionalCheckFailedException",
        "wf/Claim.Catch[0]: error-equals drops States.Timeout",
        "wf/Claim.Catch[1]: delete-catch",
        "wf/Claim.Catch[1]: error-equals drops States.ALL",
        'wf/Claim.Catch[1]: result-path "$.error" → null',
        "wf/Claim.Retry[0]: delete-retry",
        "wf/Claim.Retry[0]: error-equals drops DynamoDB.ThrottlingException",
        "wf/Claim: flip-condition '#status = :queued' → '#status <> :queued'",
        "wf/Claim: drop-condition '#status = :queued'",
        'wf/Claim: result-path "$.claim" → null',
        'wf/Fan/Inner: result-path null → "$"',
    }
    assert original == DEFINITION


def test_each_asl_mutant_makes_exactly_its_edit():
    mutants = by_ident(asl.mutants("wf", DEFINITION))

    def claim(ident: str) -> dict[str, Any]:
        return mutants[ident].apply(DEFINITION)["States"]["Claim"]

    assert "Retry" not in claim("wf/Claim.Retry[0]: delete-retry")
    assert claim("wf/Claim.Catch[0]: delete-catch")["Catch"] == CLAIM["Catch"][1:]
    assert claim("wf/Claim.Retry[0]: error-equals drops DynamoDB.ThrottlingException")["Retry"][0]["ErrorEquals"] == [
        asl.NEVER_RAISED
    ]
    assert claim("wf/Claim.Catch[0]: error-equals drops States.Timeout")["Catch"][0]["ErrorEquals"] == [
        "DynamoDB.ConditionalCheckFailedException"
    ]
    flipped = claim("wf/Claim: flip-condition '#status = :queued' → '#status <> :queued'")
    assert flipped["Parameters"]["ConditionExpression"] == "#status <> :queued"
    inner = mutants['wf/Fan/Inner: result-path null → "$"'].apply(DEFINITION)["States"]["Fan"]["ItemProcessor"]
    assert inner["States"]["Inner"]["ResultPath"] == "$"


def test_dropping_a_condition_also_drops_the_placeholders_only_it_used():
    """DynamoDB refuses unused ExpressionAttributeValues: the mutant must stay a valid request."""
    mutant = by_ident(asl.mutants("wf", DEFINITION))["wf/Claim: drop-condition '#status = :queued'"]

    params = mutant.apply(DEFINITION)["States"]["Claim"]["Parameters"]

    assert "ConditionExpression" not in params
    assert params["ExpressionAttributeNames"] == {"#status": "status"}
    assert params["ExpressionAttributeValues"] == {":running": {"S": "RUNNING"}}


def test_flips_cover_every_comparator_once():
    flips = dict(asl.flips("attribute_not_exists(taskId) AND #s <> :a OR #t = :b"))

    assert sorted(flips.values()) == sorted(
        [
            "attribute_exists(taskId) AND #s <> :a OR #t = :b",
            "attribute_not_exists(taskId) AND #s = :a OR #t = :b",
            "attribute_not_exists(taskId) AND #s <> :a OR #t <> :b",
        ]
    )


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Policy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyDocument": {"Statement": [{"Action": "s3:GetObject"}, {"Action": "sqs:SendMessage"}]}
            },
        },
        "Tasks": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "AttributeDefinitions": [
                    {"AttributeName": "taskId", "AttributeType": "S"},
                    {"AttributeName": "createdAt", "AttributeType": "N"},
                ],
                "SSESpecification": {"SSEEnabled": True},
            },
        },
        "Results": {"Type": "AWS::S3::Bucket", "Properties": {"VersioningConfiguration": {"Status": "Enabled"}}},
        "Start": {
            "Type": "AWS::Pipes::Pipe",
            "Properties": {
                "SourceParameters": {"FilterCriteria": {"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}]}}
            },
        },
        "DlqAlarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
    }
}


def test_template_mutants_make_the_edits_the_issue_names():
    mutants = {m.mutant.ident: m for m in template.mutants(TEMPLATE)}

    assert set(mutants) == {
        "Policy.Statement[0]: drop-statement",
        "Policy.Statement[1]: drop-statement",
        "Tasks.taskId: key-type S → N",
        "Tasks.createdAt: key-type N → S",
        "Tasks: drop-encryption (SSESpecification)",
        "Results: drop-versioning",
        "Start: pipe-filter removed",
        "Start.Filters[0]: pipe-filter eventName → [MUTANT]",
        "DlqAlarm: remove-alarm",
    }
    resources = mutants["Tasks.createdAt: key-type N → S"].apply(TEMPLATE)["Resources"]
    assert resources["Tasks"]["Properties"]["AttributeDefinitions"][1]["AttributeType"] == "S"
    statements = mutants["Policy.Statement[0]: drop-statement"].apply(TEMPLATE)["Resources"]["Policy"]["Properties"]
    assert statements["PolicyDocument"]["Statement"] == [{"Action": "sqs:SendMessage"}]
    pipe = mutants["Start.Filters[0]: pipe-filter eventName → [MUTANT]"].apply(TEMPLATE)["Resources"]["Start"]
    assert json.loads(pipe["Properties"]["SourceParameters"]["FilterCriteria"]["Filters"][0]["Pattern"]) == {
        "eventName": ["MUTANT"]
    }
    assert "DlqAlarm" not in mutants["DlqAlarm: remove-alarm"].apply(TEMPLATE)["Resources"]
    assert "DlqAlarm" in TEMPLATE["Resources"]


def test_the_scratch_cdk_out_links_everything_but_the_template(tmp_path: Path):
    cdk_out = tmp_path / "cdk.out"
    (cdk_out / "asset.abc").mkdir(parents=True)
    (cdk_out / "taskrail.template.json").write_text("{}")
    (cdk_out / "manifest.json").write_text("{}")

    target = template.scratch_cdk_out(cdk_out, tmp_path / "mutant", "taskrail.template.json")

    assert not target.exists()
    assert (tmp_path / "mutant" / "asset.abc").resolve() == (cdk_out / "asset.abc").resolve()
    assert (tmp_path / "mutant" / "manifest.json").is_symlink()


def test_python_sites_in_type_annotations_are_left_out():
    spans = python._annotation_spans("def f(x: int | None) -> str | None:\n    return x | 1\n")

    assert python._in_annotation((1, 14), spans)  # the | of `int | None`
    assert python._in_annotation((1, 29), spans)  # the | of `str | None`
    assert not python._in_annotation((2, 13), spans)  # the | of `x | 1`


def test_one_variant_per_place_is_kept_with_a_seed():
    sites = [python.Site("m.py", f"core/ReplaceBinaryOperator_Add_{op}", i, 3, 4) for i, op in enumerate("ABC")]
    sites.append(python.Site("m.py", "core/ReplaceTrueWithFalse", 0, 5, 1))

    kept = python.one_per_place(sites, seed=1)

    assert len(kept) == 2
    assert kept == python.one_per_place(sites, seed=1)


def test_sampling_is_reproducible_and_bounded():
    every = [Mutant("asl", f"m{i}") for i in range(50)]

    first = sampler(10, 7, "asl")(every)

    assert len(first) == 10
    assert first == sampler(10, 7, "asl")(every)
    assert first != sampler(10, 8, "asl")(every)
    assert sampler(None, 7, "asl")(every) == every


def test_the_report_replaces_an_area_block_and_keeps_the_hand_written_part(tmp_path: Path):
    doc = tmp_path / "TEST-STRENGTH.md"
    survivor = Outcome(Mutant("asl", "wf/A.Retry[0]: delete-retry"), killed=False, killed_by="", seconds=1.0)
    killed = Outcome(Mutant("asl", "wf/A.Catch[0]: delete-catch"), killed=True, killed_by="tests/x.py::t", seconds=1.0)
    first = AreaResult("asl", ("tests/workflows",), total=9, outcomes=[survivor, killed])
    update(doc, {"asl": area_block(first, "abcdef0123456789", seed=1, full=False)})
    doc.write_text(doc.read_text().replace("(written by hand)", "delete-retry: equivalent, because ..."))

    again = AreaResult("asl", ("tests/workflows",), total=9, outcomes=[killed])
    update(doc, {"asl": area_block(again, "abcdef0123456789", seed=1, full=True)})
    update(doc, {"template": area_block(AreaResult("template", ("tests/infra",), total=1), "abc", 1, True)})

    text = doc.read_text()
    assert text.count("<!-- area:asl -->") == 1
    assert "| asl | 1/1 | 100.0 % | no re-check | 9 | full |" in text
    assert "wf/A.Retry[0]: delete-retry" not in text.partition(HAND_WRITTEN)[0]
    assert text.partition(HAND_WRITTEN)[2].strip().endswith("delete-retry: equivalent, because ...")
    assert "| template | 0/0 | n/a |" in text


def test_a_recheck_reruns_the_listed_survivors_and_the_summary_counts_its_kills_with_the_samples(tmp_path: Path):
    # Given a sample of 4 with 2 survivors, one of them a change with a pipe in it
    doc = tmp_path / "TEST-STRENGTH.md"
    piped = Mutant("lambdas", "lambdas/a.py:3:4 core/ReplaceBinaryOperator_BitOr_BitAnd", "x = a | b → x = a & b")
    other = Mutant("lambdas", "lambdas/a.py:9:1 core/AddNot", "if y: → if not y:")
    hit = Outcome(Mutant("lambdas", "lambdas/a.py:1:1 core/AddNot", "z"), killed=True, killed_by="t", seconds=1.0)
    sample = AreaResult(
        "lambdas",
        ("tests/unit",),
        total=50,
        outcomes=[hit, hit, Outcome(piped, False, "", 1.0), Outcome(other, False, "", 1.0)],
    )
    update(doc, {"lambdas": area_block(sample, "abcdef0123456789", seed=1, full=False)})

    # When its survivors are read back, Then they are the same mutants with the same changes
    commit, survivors = survivors_of(doc, "lambdas")
    assert (commit, survivors) == ("abcdef012345", [piped, other])

    # When a re-check at a newer commit kills one of them
    again = AreaResult(
        "lambdas",
        ("tests/unit/test_new.py",),
        total=50,
        outcomes=[Outcome(piped, True, "tests/unit/test_new.py::t", 1.0), Outcome(other, False, "", 1.0)],
    )
    update(doc, {"lambdas_recheck": recheck_block(again, commit, "0123456789ab")})

    # Then the summary counts 3 of the 4 killed, and the sample's own block is unchanged
    text = doc.read_text()
    assert "| lambdas | 2/4 | 50.0 % | 3/4 (75.0 %) at `0123456789ab` | 50 | sample |" in text
    assert survivors_of(doc, "lambdas") == (commit, survivors)
    assert text.index("<!-- area:lambdas -->") < text.index("<!-- area:lambdas_recheck -->")

    # When the area is sampled again at another commit, Then the older re-check no longer counts
    update(doc, {"lambdas": area_block(sample, "fedcba9876543210", seed=1, full=False)})
    assert "| lambdas | 2/4 | 50.0 % | no re-check | 50 | sample |" in doc.read_text()


def test_a_run_stopped_before_its_sample_ends_is_reported_as_partial(tmp_path: Path):
    # Given an area of which 2 of 5 sampled mutants were judged when the run stopped
    doc = tmp_path / "TEST-STRENGTH.md"
    killed = Outcome(Mutant("asl", "wf/A.Catch[0]: delete-catch"), killed=True, killed_by="tests/x.py::t", seconds=1.0)
    survivor = Outcome(Mutant("asl", "wf/A.Retry[0]: delete-retry"), killed=False, killed_by="", seconds=1.0)
    heard: list[int] = []
    result = AreaResult(
        "asl", ("tests/workflows",), total=9, sampled=5, listener=lambda r: heard.append(len(r.outcomes))
    )
    result.add(killed)
    result.add(survivor)

    # Then the listener heard of each, and the report says the figures are partial
    assert heard == [1, 2]
    update(doc, {"asl": area_block(result, "abcdef0123456789", seed=1, full=False)})
    text = doc.read_text()
    assert "| asl | 1/2 | 50.0 % | no re-check | 9 | partial |" in text
    assert "2 of the 5 sampled mutants judged so far" in text
