"""docs/deploy/template.yaml: valid YAML, valid CloudFormation (cfn-lint, which checks every
resource's required properties against AWS's schemas), and the settings docs/deploy.md promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from keyshift.core.kernel.echo_dynamodb import echo_table_definition

TEMPLATE = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt…) read as {"Fn::…": value}."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)


def _refs(node, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0])
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)
    return out


#: Properties each resource type cannot do without (AWS's resource reference), checked here even
#: where cfn-lint is not installed.
REQUIRED = {
    "AWS::Lambda::Function": {"Code", "Role", "Runtime", "Handler"},
    "AWS::Lambda::EventSourceMapping": {"FunctionName", "EventSourceArn", "StartingPosition"},
    "AWS::IAM::Role": {"AssumeRolePolicyDocument"},
    "AWS::DynamoDB::Table": {"KeySchema", "AttributeDefinitions"},
    "AWS::SQS::Queue": set(),
    "AWS::CloudWatch::Alarm": {"ComparisonOperator", "EvaluationPeriods", "MetricName", "Namespace", "Threshold"},
}


def test_every_resource_has_its_required_properties_and_every_reference_resolves(template):
    resources = template["Resources"]
    for name, res in resources.items():
        assert res["Type"] in REQUIRED, name
        missing = REQUIRED[res["Type"]] - set(res.get("Properties", {}))
        assert not missing, f"{name} lacks {missing}"
        if "Condition" in res:
            assert res["Condition"] in template["Conditions"]
    known = set(template["Parameters"]) | set(resources) | {"AWS::Region", "AWS::AccountId", "AWS::Partition",
                                                            "AWS::StackName", "AWS::NoValue"}
    assert _refs(template, set()) <= known


def test_functions_and_mappings_are_what_docs_deploy_md_says(template):
    res = template["Resources"]
    for direction, fn, mapping, stream in (("forward", "ForwardFunction", "ForwardMapping", "SourceStreamArn"),
                                           ("reverse", "ReverseFunction", "ReverseMapping", "TargetStreamArn")):
        props = res[fn]["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Handler"] == "keyshift.core.lambda_handler.handler"
        env = props["Environment"]["Variables"]
        assert set(env) == {"KEYSHIFT_KEYMAP_URI", "KEYSHIFT_DIRECTION"} and env["KEYSHIFT_DIRECTION"] == direction
        m = res[mapping]["Properties"]
        assert m["EventSourceArn"] == {"Ref": stream}
        assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert m["BisectBatchOnFunctionError"] is True
        assert 0 < m["MaximumRetryAttempts"] <= 10000 and 60 <= m["MaximumRecordAgeInSeconds"] <= 604800
        assert "Fn::GetAtt" in m["DestinationConfig"]["OnFailure"]["Destination"]
        assert m["ParallelizationFactor"] == {"Ref": "ParallelizationFactor"}
        assert m["StartingPosition"] == ("TRIM_HORIZON" if direction == "forward" else "LATEST")
    assert template["Parameters"]["ParallelizationFactor"]["MaxValue"] == 10
    alarms = [r["Properties"] for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert sum(a["MetricName"] == "IteratorAge" for a in alarms) == 2


def test_roles_are_least_privilege(template):
    for role in ("ForwardRole", "ReverseRole"):
        statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        for st in statements:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert all("*" not in a for a in actions), (role, actions)
            if st["Resource"] == "*":
                assert actions == ["dynamodb:ListStreams"], (role, st)  # has no resource-level form
        writes = [st for st in statements if "dynamodb:BatchWriteItem" in st["Action"]]
        assert len(writes) == 2  # the one table it replays into, and the hold table


def test_hold_and_echo_tables_have_the_handler_s_schemas(template):
    res = template["Resources"]
    echo = res["EchoTable"]["Properties"]
    expected = echo_table_definition("x")
    assert echo["KeySchema"] == expected["KeySchema"]
    assert echo["AttributeDefinitions"] == expected["AttributeDefinitions"]
    assert echo["TimeToLiveSpecification"] == {"AttributeName": "expires", "Enabled": True}
    hold = res["HoldTable"]["Properties"]
    assert hold["KeySchema"] == [{"AttributeName": "raw", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}]


def test_cfn_lint_finds_nothing():
    lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which("cfn-lint")
    if lint is None:  # pragma: no cover - moto[server] (the test extra) brings it
        pytest.skip("cfn-lint is not installed")
    result = subprocess.run([lint, str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
