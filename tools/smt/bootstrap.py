"""make bootstrap: the project's AWS resources (the SageMaker execution role, the bucket, the
ECR repository) as one CloudFormation stack, from the project's infra/stack.yaml. The stack's
outputs go into settings.env, so the next make train-remote uses them; run again with nothing
changed, it changes nothing."""

import itertools
import math
import re
import time

from botocore.exceptions import ClientError, WaiterError

from smt import aws
from smt.errors import Failure
from smt.settings import BY_NAME, SETTINGS_FILE

TEMPLATE = "infra/stack.yaml"
NO_CHANGES = "No updates are to be performed"  # AWS's word (a ValidationError) for a no-op
UPDATABLE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
             "IMPORT_ROLLBACK_COMPLETE"}  # fmt: skip
STARTED = "User Initiated"  # the reason of the stack's own first event of each operation


def bootstrap(settings) -> int:
    name, template = settings.stack_name, settings.project_dir / TEMPLATE
    if not template.is_file():
        raise Failure(f"{TEMPLATE} is missing: make bootstrap deploys it; restore it (make update)")
    session = aws.session(settings.aws_region)
    cloudformation, started = session.client("cloudformation"), time.monotonic()
    given = {"ProjectName": settings.project_name, "RepositoryName": settings.ecr_repository,
             "BaseJobName": settings.base_job_name}  # fmt: skip
    # A stack's tags go onto each of its resources: ProjectName only, or every commit would
    # update them all (aws.tags adds the commit).
    request = {"StackName": name, "TemplateBody": template.read_text(),
               "Capabilities": ["CAPABILITY_IAM"],  # the role: a name of CloudFormation's
               "Tags": [tag for tag in aws.tags(settings) if tag["Key"] == "ProjectName"],
               "Parameters": [{"ParameterKey": key, "ParameterValue": value}
                              for key, value in given.items()]}  # fmt: skip
    stack = described(cloudformation, name)
    if stack is None:
        # A repository made before the stack (by the template's hook, or by hand) stays as it
        # is, outside the stack: CloudFormation cannot create one of the same name.
        new = not aws.repository_exists(session.client("ecr"), settings.ecr_repository)
        create = {"ParameterKey": "CreateRepository", "ParameterValue": str(new).lower()}
        request["Parameters"].append(create)
        print(f"Creating stack {name} in {settings.aws_region} ...", flush=True)
        cloudformation.create_stack(
            **request, TimeoutInMinutes=math.ceil(settings.stack_timeout / 60)
        )
        wait(cloudformation, "stack_create_complete", name, settings.stack_timeout)
        print(f"Stack {name} created ({time.monotonic() - started:.0f} s)")
    else:
        check_updatable(stack, settings.aws_region)
        request["Parameters"].append({"ParameterKey": "CreateRepository", "UsePreviousValue": True})
        try:
            cloudformation.update_stack(**request)
        except ClientError as error:
            if aws.error_code(error) != "ValidationError" or NO_CHANGES not in str(error):
                raise
            print(f"Stack {name}: no changes")
        else:
            print(f"Updating stack {name} ...", flush=True)
            wait(cloudformation, "stack_update_complete", name, settings.stack_timeout)
            print(f"Stack {name} updated ({time.monotonic() - started:.0f} s)")
    outputs = {setting_of(o["OutputKey"]): o["OutputValue"]
               for o in described(cloudformation, name).get("Outputs", [])}  # fmt: skip
    written = write_settings(settings.project_dir / SETTINGS_FILE,
                             {**outputs, "STACK_NAME": name})  # fmt: skip
    listed = ", ".join(written) if written else "nothing new"
    print(f"{SETTINGS_FILE}: {listed}. Next: make build push (no Docker: make build-remote), "
          "then make train-remote")  # fmt: skip
    return 0


def described(cloudformation, name: str) -> dict | None:
    """The stack, or None when there is none of that name."""
    try:
        return cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as error:
        if aws.error_code(error) == "ValidationError" and "does not exist" in str(error):
            return None
        raise


def check_updatable(stack: dict, region: str) -> None:
    name, status = stack["StackName"], stack["StackStatus"]
    if status.endswith("_IN_PROGRESS"):
        raise Failure(f"stack {name} is busy ({status}); wait for it to finish, then retry")
    if status not in UPDATABLE:  # e.g. ROLLBACK_COMPLETE: a failed create leaves it so
        delete = f"aws cloudformation delete-stack --stack-name {name} --region {region}"
        raise Failure(f"stack {name} is {status} and cannot be updated; delete it ({delete}: "
                      "the bucket and the repository are kept), then make bootstrap")  # fmt: skip


def wait(cloudformation, waiter: str, name: str, timeout: float) -> None:
    """The waiter (a look every POLL_SECONDS, STACK_TIMEOUT in all), its status on one line;
    a failed stack is a Failure naming its first failed resource and why."""
    progress = aws.Progress()

    def show(parsed):  # a deleted stack's last answer: "does not exist", no status
        if "Stacks" in parsed:
            progress.show(f"Stack {name}: {parsed['Stacks'][0]['StackStatus']}")

    try:
        aws.wait(cloudformation, waiter, timeout, show, StackName=name)
    except WaiterError as error:
        progress.end()
        status = error.last_response["Stacks"][0]["StackStatus"]
        if status.endswith("_IN_PROGRESS"):
            raise Failure(f"stack {name} is still {status} after {timeout:g} s (STACK_TIMEOUT); "
                          "make bootstrap again once it is done") from None  # fmt: skip
        raise Failure(f"stack {name} {status}: {first_failure(cloudformation, name)}") from None
    progress.end()


def first_failure(cloudformation, name: str) -> str:
    """The first resource that failed in the stack's last operation, and why."""
    pages = cloudformation.get_paginator("describe_stack_events").paginate(StackName=name)
    events = (event for page in pages for event in page["StackEvents"])  # newest first
    last = itertools.takewhile(lambda e: e.get("ResourceStatusReason") != STARTED, events)
    failed = [e for e in last if e["ResourceStatus"].endswith("_FAILED")
              and e["ResourceType"] != "AWS::CloudFormation::Stack"]  # fmt: skip
    if not failed:
        return f"no resource says why; aws cloudformation describe-stack-events --stack-name {name}"
    first = failed[-1]
    reason = " ".join(first.get("ResourceStatusReason", "no reason given").split())
    return f"{first['LogicalResourceId']} ({first['ResourceType']}): {reason}"


def setting_of(output: str) -> str:
    """An output's setting: RoleArn -> ROLE_ARN, S3OutputPath -> S3_OUTPUT_PATH."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", output).upper()


def write_settings(path, values: dict[str, str]) -> list[str]:
    """Set each setting of `values` in settings.env where its line is (else at the end),
    keeping every other line and comment; the names of those that changed."""
    values = {name: value for name, value in values.items() if name in BY_NAME}
    lines, changed = path.read_text().splitlines(), []
    for name, value in values.items():
        line = f"{name} = {value}"
        at = [i for i, old in enumerate(lines) if re.match(rf"\s*{name}\s*=", old)]
        if at and lines[at[-1]].strip() == line:
            continue
        if at:
            lines[at[-1]] = line
        else:
            lines.append(line)
        changed.append(name)
    if changed:
        path.write_text("\n".join(lines) + "\n")
    return changed
