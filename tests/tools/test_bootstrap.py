"""make bootstrap against the moto server: the stack of infra/stack.yaml (role, bucket, ECR
repository), its outputs in settings.env, a second run that changes nothing, a failed stack
in one line. moto accepts what AWS refuses, so the requests sent are checked too: against
botocore's API model, and for what they ask."""

import ast
import json
import subprocess
import time
from xml.sax.saxutils import escape

import pytest
import yaml
from helpers import VENV_BIN, actions, valid_against_the_model
from smt import settings as settings_table

STACK = "mnist-on-sagemaker"  # BASE_JOB_NAME of the baked project
REPOSITORY = "mnist_on_sagemaker"
WRITTEN = ("ROLE_ARN", "S3_OUTPUT_PATH", "ECR_REPOSITORY", "STACK_NAME")


def one_line(done) -> str:
    assert "Traceback" not in done.err, done.err
    [line] = done.err.strip().splitlines()
    return line


class CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub ...) read as their plain values."""


CloudFormationLoader.add_multi_constructor("!", lambda loader, tag, node: node.value)


def stack_template(project_dir) -> dict:
    return yaml.load((project_dir / "infra/stack.yaml").read_text(), CloudFormationLoader)


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def parameters(request: dict) -> dict:
    return {p["ParameterKey"]: p.get("ParameterValue", "(previous)") for p in request["Parameters"]}


def test_the_stack_template_passes_cfn_lint(project_dir):
    done = subprocess.run([str(VENV_BIN / "cfn-lint"), "infra/stack.yaml"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_bootstrap_makes_the_stack_and_writes_its_outputs_into_settings_env(smt, aws, project_dir):
    env_file = project_dir / "settings.env"
    env_file.write_text(env_file.read_text() + "# mine\nDATASET = digits\n")
    kept = [line for line in env_file.read_text().splitlines() if not line.startswith(WRITTEN)]
    aws.start_recording()
    started = time.monotonic()
    done = smt("bootstrap")
    seconds = time.monotonic() - started
    assert done.code == 0, done.err
    print(f"bootstrap on moto: {len(actions(aws))} requests, {seconds:.1f} s")

    new_lines = env_file.read_text().splitlines()
    assert [line for line in new_lines if not line.startswith(WRITTEN)] == kept
    values = settings_table.load("train-remote", project_dir, environ={})
    [stack] = aws.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert values.role_arn == outputs["RoleArn"]
    assert values.s3_output_path == outputs["S3OutputPath"]
    assert values.ecr_repository == REPOSITORY
    assert f"STACK_NAME = {STACK}" in new_lines
    assert "settings.env: ROLE_ARN, S3_OUTPUT_PATH, STACK_NAME" in done.out
    [create] = valid_against_the_model(aws, "CreateStack")
    assert create["Capabilities"] == ["CAPABILITY_IAM"]
    assert create["Tags"] == [{"Key": "ProjectName", "Value": "MNIST on SageMaker"}]
    assert parameters(create)["CreateRepository"] == "true"
    assert create["TemplateBody"] == (project_dir / "infra/stack.yaml").read_text()


def test_the_stack_holds_a_role_for_sagemaker_a_closed_bucket_and_a_strict_repository(
    smt, aws, project_dir
):
    assert smt("bootstrap").code == 0
    values = settings_table.load("train-remote", project_dir, environ={})
    bucket, prefix = values.s3_output_path.removeprefix("s3://").split("/", 1)
    tag = {"Key": "ProjectName", "Value": "MNIST on SageMaker"}

    iam = aws.client("iam")
    role = values.role_arn.rsplit("/", 1)[1]
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "sagemaker.amazonaws.com"}]
    assert tag in iam.list_role_tags(RoleName=role)["Tags"]
    [policy] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    if isinstance(document, str):  # moto keeps a role's policy from CloudFormation as repr()
        document = ast.literal_eval(document)
    resources = {}  # action -> the resources it reaches
    for statement in document["Statement"]:
        for action in as_list(statement["Action"]):
            resources[action] = as_list(statement["Resource"])
    account, region = aws.account_id, aws.region
    assert resources["s3:GetObject"] == [f"arn:aws:s3:::{bucket}/{prefix}/*"]
    assert resources["s3:PutObject"] == [f"arn:aws:s3:::{bucket}/{prefix}/*"]
    assert resources["ecr:BatchGetImage"] == [
        f"arn:aws:ecr:{region}:{account}:repository/{REPOSITORY}"
    ]
    stars = sorted(action for action, where in resources.items() if where == ["*"])
    assert stars == ["cloudwatch:PutMetricData", "ecr:GetAuthorizationToken"]
    assert all(":log-group:/aws/sagemaker/" in r for r in resources["logs:PutLogEvents"])

    s3 = aws.client("s3")
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert tag in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]

    ecr = aws.client("ecr")
    [repository] = ecr.describe_repositories(repositoryNames=[REPOSITORY])["repositories"]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert tag in ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]
    # moto keeps no public access block, scan on push nor lifecycle policy made by
    # CloudFormation: the template says them
    resources = stack_template(project_dir)["Resources"]
    block = resources["Bucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    assert resources["Bucket"]["DeletionPolicy"] == "Retain"
    assert resources["Repository"]["Properties"]["ImageScanningConfiguration"] == {
        "ScanOnPush": True
    }
    lifecycle = resources["Repository"]["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]
    [rule] = json.loads(lifecycle)["rules"]
    assert rule["selection"]["tagStatus"] == "untagged"
    assert rule["action"] == {"type": "expire"}


def test_a_second_bootstrap_changes_nothing_and_says_so(smt, aws, project_dir):
    assert smt("bootstrap").code == 0
    before = (project_dir / "settings.env").read_text()
    cloudformation = aws.client("cloudformation")
    events = cloudformation.describe_stack_events(StackName=STACK)["StackEvents"]
    aws.start_recording()

    done = smt("bootstrap")

    assert done.code == 0, done.err
    assert f"Stack {STACK}: no changes" in done.out
    assert "settings.env: nothing new" in done.out
    assert (project_dir / "settings.env").read_text() == before
    assert cloudformation.describe_stack_events(StackName=STACK)["StackEvents"] == events
    assert "CreateStack" not in actions(aws)
    [update] = valid_against_the_model(aws, "UpdateStack")  # refused by CloudFormation: a no-op
    assert parameters(update)["CreateRepository"] == "(previous)"


def test_a_changed_template_updates_the_stack(smt, aws, project_dir):
    assert smt("bootstrap").code == 0
    template = project_dir / "infra/stack.yaml"
    template.write_text(template.read_text().replace('countNumber": 7', 'countNumber": 3'))
    aws.start_recording()

    done = smt("bootstrap")

    assert done.code == 0, done.err
    assert f"Stack {STACK} updated" in done.out
    [update] = valid_against_the_model(aws, "UpdateStack")
    assert '"countNumber": 3' in update["TemplateBody"]


def test_a_repository_made_before_the_stack_is_kept_outside_it(smt, aws, project_dir):
    aws.client("ecr").create_repository(repositoryName=REPOSITORY)
    aws.start_recording()

    assert smt("bootstrap").code == 0

    [create] = valid_against_the_model(aws, "CreateStack")
    assert parameters(create)["CreateRepository"] == "false"
    listed = aws.client("cloudformation").list_stack_resources(StackName=STACK)
    # moto lists a resource its condition left out, and one it cannot make (the CodeBuild
    # project), as an entry without a name
    made = sorted(filter(None, (r["LogicalResourceId"] for r in listed["StackResourceSummaries"])))
    assert made == ["Bucket", "BuildRole", "ExecutionRole"]


def stack_answer(status: str) -> bytes:
    return (
        '<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
        f"<DescribeStacksResult><Stacks><member><StackName>{STACK}</StackName>"
        f"<StackId>arn:aws:cloudformation:us-east-1:1:stack/{STACK}/1</StackId>"
        "<CreationTime>2026-01-01T00:00:00Z</CreationTime>"
        f"<StackStatus>{status}</StackStatus></member></Stacks></DescribeStacksResult>"
        "</DescribeStacksResponse>"
    ).encode()


def events_answer(*events: tuple[str, str, str, str]) -> bytes:
    """DescribeStackEvents' XML: (logical id, type, status, reason) each, newest first."""
    members = "".join(
        f"<member><StackName>{STACK}</StackName><StackId>x</StackId><EventId>{n}</EventId>"
        f"<LogicalResourceId>{logical}</LogicalResourceId><ResourceType>{kind}</ResourceType>"
        "<Timestamp>2026-01-01T00:00:00Z</Timestamp>"
        f"<ResourceStatus>{status}</ResourceStatus>"
        f"<ResourceStatusReason>{escape(reason)}</ResourceStatusReason></member>"
        for n, (logical, kind, status, reason) in enumerate(events)
    )
    return (
        '<DescribeStackEventsResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
        f"<DescribeStackEventsResult><StackEvents>{members}</StackEvents>"
        "</DescribeStackEventsResult></DescribeStackEventsResponse>"
    ).encode()


def test_a_failed_stack_says_its_first_failed_resource_and_why_in_one_line(
    smt, aws, overlay, monkeypatch
):
    """moto creates every stack at once: the overlay answers as AWS does after a failed
    create (ROLLBACK_COMPLETE, and its events)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", overlay.url)
    looks = []
    stack = "AWS::CloudFormation::Stack"
    overlay.query_answers["DescribeStacks"] = lambda form: (
        looks.append(1) or (stack_answer("ROLLBACK_COMPLETE") if len(looks) > 1 else None)
    )
    overlay.query_answers["DescribeStackEvents"] = lambda form: events_answer(
        (STACK, stack, "ROLLBACK_COMPLETE", ""),
        ("ExecutionRole", "AWS::IAM::Role", "DELETE_COMPLETE", ""),
        ("ExecutionRole", "AWS::IAM::Role", "CREATE_FAILED", "Resource creation cancelled"),
        (STACK, stack, "ROLLBACK_IN_PROGRESS", "The following resource(s) failed: [Bucket]"),
        ("Bucket", "AWS::S3::Bucket", "CREATE_FAILED", "bucket-x already exists\n(Status 409)"),
        ("Bucket", "AWS::S3::Bucket", "CREATE_IN_PROGRESS", ""),
        (STACK, stack, "CREATE_IN_PROGRESS", "User Initiated"),
        ("Old", "AWS::S3::Bucket", "CREATE_FAILED", "an earlier attempt's"),
    )

    done = smt("bootstrap")

    assert done.code == 1
    assert one_line(done) == (
        f"error: stack {STACK} ROLLBACK_COMPLETE: Bucket (AWS::S3::Bucket): "
        "bucket-x already exists (Status 409)"
    )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("STACK_NAME", "1-stack", "'1-stack' is not a stack name"),
        ("STACK_NAME", "my_stack", "'my_stack' is not a stack name"),
        ("STACK_NAME", "s" * 129, "is not a stack name"),
        ("STACK_TIMEOUT", "0", "'0' is not a whole number >= 1"),
        ("STACK_TIMEOUT", "ten", "'ten' is not a whole number >= 1"),
    ],
)
def test_a_bad_stack_setting_is_one_line_naming_it(smt, aws, name, value, says):
    aws.start_recording()
    done = smt("bootstrap", "--" + name.lower().replace("_", "-"), value)
    assert done.code == 2
    line = one_line(done)
    assert line.startswith(f"error: {name}: ") and says in line, line
    assert actions(aws) == []  # refused before any request
