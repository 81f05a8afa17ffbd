"""Each role is granted exactly the actions it uses: a reviewed snapshot of the action set per role.

After a reviewed change of permissions, regenerate the snapshot with ``python -m infra.iam_snapshot``.
"""

import json
from typing import Any

from infra.iam_snapshot import SNAPSHOT_PATH, role_actions

API_ROLE = "Api/IntegrationRole"


def test_every_role_is_granted_exactly_the_snapshotted_actions(template):
    expected = json.loads(SNAPSHOT_PATH.read_text())

    actual = role_actions(template)

    assert sorted(actual) == sorted(expected), "roles added or removed: review, then `python -m infra.iam_snapshot`"
    for role, grants in actual.items():
        assert grants == expected[role], f"{role}: review the change, then `python -m infra.iam_snapshot`"


def test_api_role_is_granted_exactly_the_actions_of_its_integrations(template: dict[str, Any]):
    uris = [
        json.dumps(r["Properties"]["Integration"]["Uri"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApiGateway::Method"
    ]
    used = {"dynamodb:" + uri.rsplit("action/", 1)[1].split('"', 1)[0] for uri in uris if "action/" in uri}
    used |= {"lambda:InvokeFunction" for uri in uris if ":lambda:path/2015-03-31/functions/" in uri}

    assert role_actions(template)[API_ROLE]["actions"] == sorted(used)
    invoked = [g for g in role_actions(template)[API_ROLE]["grants"] if g.startswith("lambda:")]
    assert invoked == [  # the functions' aliases, no :* (docs/DEPLOY.md)
        "lambda:InvokeFunction on <Functions/MeFunctionLive>",
        "lambda:InvokeFunction on <Functions/ReadResultFunctionLive>",
    ]


def test_no_role_has_a_managed_policy_beyond_api_gateway_logging(template):
    managed = {role: grants["managedPolicies"] for role, grants in role_actions(template).items()}

    assert {role: m for role, m in managed.items() if m} == {
        "Api/TasksApi/CloudWatchRole": ["service-role/AmazonAPIGatewayPushToCloudWatchLogs"],
        # CodeDeploy's documented role policy for Lambda canaries (docs/DEPLOY.md, infra/nag.py)
        "Functions/DeployRole": ["service-role/AWSCodeDeployRoleForLambdaLimited"],
    }
