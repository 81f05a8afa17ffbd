"""The IAM log on disk and its report: per principal the actions used, the denials, the grants no call used."""

from __future__ import annotations

import json
import os
from pathlib import Path

from taskrail.local.iam.enforce import (
    DECISIONS_FILE,
    GRANTS_FILE,
    KEEP_IAM_LOGS,
    IamLog,
    IamRecord,
    LocalIam,
    prune_iam_logs,
)
from taskrail.local.iam.report import format_summary, latest_pid, main, summarize

GRANTS = """[
 {"policy": "FnPolicy", "statement": 0, "effect": "Allow", "actions": ["dynamodb:GetItem"], "resources": ["arn:t"]},
 {"policy": "FnPolicy", "statement": 1, "effect": "Allow", "actions": ["s3:PutObject"], "resources": ["arn:b/*"]},
 {"policy": "Bucket", "statement": 0, "effect": "Deny", "actions": ["s3:*"], "resources": ["arn:b/*"]}
]"""


def test_the_report_counts_calls_and_lists_denials_and_unused_allow_grants(tmp_path: Path) -> None:
    role = "arn:aws:iam::123456789012:role/taskrail-FnRole"
    log = IamLog(tmp_path / DECISIONS_FILE.format(pid=42))
    log.add(IamRecord(role, "fn", "dynamodb", "GetItem", "dynamodb:GetItem", "arn:t", True, "FnPolicy[0]"))
    log.add(IamRecord(role, "fn", "dynamodb", "GetItem", "dynamodb:GetItem", "arn:t", True, "FnPolicy[0]"))
    log.add(IamRecord(role, "fn", "sqs", "SendMessage", "sqs:SendMessage", "arn:q", False, "no statement allows it"))
    (tmp_path / GRANTS_FILE.format(pid=42)).write_text(GRANTS)
    assert latest_pid(tmp_path) == 42
    summary = summarize(tmp_path, 42)
    assert summary["calls"] == 3
    assert summary["principals"][role] == {
        "calls": 3, "denials": 1, "actions": {"dynamodb:GetItem": 2, "sqs:SendMessage": 1},
    }  # fmt: skip
    assert [(e["grant"], e["kept_because"]) for e in summary["unexercised"]] == [
        ("FnPolicy[1]: s3:PutObject on arn:b/*", None)
    ]  # the used grant and the Deny are not listed
    text = format_summary(summary)
    print(text)
    assert "DENIED taskrail-FnRole: sqs:SendMessage on arn:q" in text
    assert main([str(tmp_path)]) == 0


def test_no_log_is_a_clear_exit_code(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 2


def test_the_report_lists_each_unused_action_with_the_reason_it_is_kept(tmp_path: Path) -> None:
    grants = [
        {"policy": "FunctionsFnRoleDefaultPolicy1A2B3C4D", "statement": 0, "effect": "Allow",
         "actions": ["xray:PutTraceSegments", "dynamodb:GetItem"], "resources": ["*"]},
    ]  # fmt: skip
    role = "arn:aws:iam::123456789012:role/taskrail-FnRole"
    log = IamLog(tmp_path / DECISIONS_FILE.format(pid=7))
    decided_by = f"{grants[0]['policy']}[0]"
    log.add(IamRecord(role, "fn", "dynamodb", "GetItem", "dynamodb:GetItem", "arn:t", True, decided_by))
    (tmp_path / GRANTS_FILE.format(pid=7)).write_text(json.dumps(grants))
    summary = summarize(tmp_path, 7)
    [entry] = summary["unexercised"]  # the statement was used, but not each of its actions: dynamodb:GetItem was
    assert entry["grant"] == "FunctionsFnRoleDefaultPolicy1A2B3C4D[0]: xray:PutTraceSegments on *"
    assert entry["kept_because"].startswith("X-Ray active tracing")  # from taskrail/local/iam/unexercised_grants.json
    assert "kept: X-Ray active tracing" in format_summary(summary)


def test_the_decisions_file_holds_every_line_while_open_and_after_close(tmp_path: Path) -> None:
    # the file stays open between records (line-buffered): a reader sees each record as it is added
    path = tmp_path / DECISIONS_FILE.format(pid=3)
    log = IamLog(path)
    role = "arn:aws:iam::123456789012:role/taskrail-FnRole"
    log.add(IamRecord(role, "fn", "dynamodb", "GetItem", "dynamodb:GetItem", "arn:t", True, "FnPolicy[0]"))
    assert len(path.read_text().splitlines()) == 1
    log.add(IamRecord(role, "fn", "sqs", "SendMessage", "sqs:SendMessage", "arn:q", False, "no statement allows it"))
    log.close()
    log.add(IamRecord(role, "fn", "s3", "GetObject", "s3:GetObject", "arn:b/k", True, "FnPolicy[1]"))
    log.close()
    actions = [json.loads(line)["action"] for line in path.read_text().splitlines()]
    assert actions == ["dynamodb:GetItem", "sqs:SendMessage", "s3:GetObject"]


def _stack_files(log_dir: Path, pid: int, mtime: float) -> list[Path]:
    paths = [log_dir / DECISIONS_FILE.format(pid=pid), log_dir / GRANTS_FILE.format(pid=pid)]
    for path in paths:
        path.write_text("{}\n")
        os.utime(path, (mtime, mtime))
    return paths


def test_pruning_keeps_running_stacks_and_the_newest_stopped_ones(tmp_path: Path) -> None:
    running = {7, 8}
    for pid in range(1, 11):  # pid 10 is the newest
        _stack_files(tmp_path, pid, 1_000_000 + pid)
    (tmp_path / "pipes-3.log").write_text("not an IAM file")
    deleted = prune_iam_logs(tmp_path, keep=3, alive=lambda pid: pid in running)
    left = {int(p.stem.rsplit("-", 1)[1]) for p in tmp_path.glob("iam-*")}
    print(f"deleted {len(deleted)} files; the IAM files left are of stacks {sorted(left)}")
    assert left == {10, 9, 6, 7, 8}  # the 3 newest stopped stacks, and the running ones however old
    assert len(deleted) == 10 and (tmp_path / "pipes-3.log").exists()
    assert {len(list(tmp_path.glob(f"iam-*-{pid}.*"))) for pid in left} == {2}


def test_a_stack_starting_prunes_the_iam_files_of_stopped_stacks_beyond_the_newest(tmp_path: Path) -> None:
    # pids above Linux's largest (pid_max is at most 2**22) belong to no process: stopped stacks
    stopped = [2**22 + 100 + i for i in range(KEEP_IAM_LOGS + 5)]
    for age, pid in enumerate(stopped):
        _stack_files(tmp_path, pid, 1_000_000 - age)  # the first ones are the newest
    parent = os.getppid()  # a running process, with old files
    _stack_files(tmp_path, parent, 1)
    before = len(list(tmp_path.glob("iam-*")))
    LocalIam(log_dir=tmp_path)
    left = sorted({int(p.stem.rsplit("-", 1)[1]) for p in tmp_path.glob("iam-*")})
    print(f"IAM files before a stack starts: {before}, after: {len(list(tmp_path.glob('iam-*')))}")
    assert left == sorted([*stopped[:KEEP_IAM_LOGS], parent])


def test_the_decision_record_names_the_log_files_and_the_command_as_they_are() -> None:
    # docs/DECISIONS.md's issue-12 section once named 'iam-decisions.jsonl' (the file is per stack process) and said
    # service deliveries were not evaluated on the running path (they are: LocalIam.service_delivery)
    text = (Path(__file__).parents[3] / "docs" / "DECISIONS.md").read_text(encoding="utf-8")
    section = text.split("## IAM enforced locally", 1)[1].split("\n## ", 1)[0]
    assert DECISIONS_FILE.format(pid="<pid>") in section and GRANTS_FILE.format(pid="<pid>") in section
    assert "iam-decisions.jsonl" not in section
    assert "taskrail local iam" in section
    assert "not on the running path" not in section and "service_delivery" in section
