"""Helpers shared by the tests (fixtures are in conftest.py)."""

import base64
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path
from xml.sax.saxutils import escape

import botocore.session
import numpy as np
from botocore.validate import ParamValidator
from cookiecutter.generate import generate_context
from cookiecutter.main import cookiecutter
from cookiecutter.prompt import prompt_for_config
from cookiecutter.utils import create_env_with_context

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# Not moto's default 123456789012, so a test passes only if the real account is read.
MOTO_ACCOUNT_ID = "210987654321"
# What a loaded 2-core machine may add to the timeouts the code is configured with (process
# start-ups, imports): a test's time bound is those timeouts, read from the code, plus this.
SLOW_MACHINE_MARGIN_S = 30.0


def resolved_answers(**overrides: str) -> dict:
    """The answers exactly as `cookiecutter --no-input key=value...` hands them to the hooks,
    with the templated defaults (project_slug, role_arn, ...) filled in."""
    context = generate_context(str(TEMPLATE_DIR / "cookiecutter.json"), extra_context=overrides)
    return dict(prompt_for_config(context, no_input=True))


def render_hook(answers: dict) -> str:
    """The pre-generation hook as cookiecutter writes it out before running it
    (cookiecutter.hooks.run_script_with_context)."""
    context = {"cookiecutter": answers}
    hook = (TEMPLATE_DIR / "hooks" / "pre_gen_project.py").read_text()
    return create_env_with_context(context).from_string(hook).render(**context)


def free_port() -> int:
    """A port nothing listens on (the socket is closed again): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment_without_aws(aws_files: Path, **extra: str) -> dict[str, str]:
    """os.environ minus every AWS_* variable, with empty AWS config and credentials files,
    so nothing of the developer's AWS setup (profile, keys, SSO, instance role) is used."""
    aws_files.mkdir(parents=True, exist_ok=True)
    for name in ("config", "credentials"):
        (aws_files / name).touch()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(aws_files / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws_files / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env


def create_training_job(
    moto, name: str, instance_count: int = 1, output: str = "s3://b/out", tags: dict | None = None
) -> None:
    """A training job in the moto server (moto 5.2.5 makes every training job Completed; its
    model: <output>/<name>/output/model.tar.gz)."""
    moto.client("sagemaker").create_training_job(
        TrainingJobName=name,
        RoleArn=f"arn:aws:iam::{moto.account_id}:role/SageMakerExecutionRole",
        AlgorithmSpecification={"TrainingImage": "x:1", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": output},
        ResourceConfig={
            "InstanceType": "ml.m5.large",
            "InstanceCount": instance_count,
            "VolumeSizeInGB": 30,
        },
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=[{"Key": key, "Value": value} for key, value in (tags or {}).items()],
    )


# ---- make doctor: run it in a baked project, read its report, give it a ready account

SAGEMAKER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
# A single-image manifest (Docker v2 schema 2), as `docker push` of a classic build sends it.
IMAGE_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 7023,
        "digest": "sha256:" + "a" * 64,
    },
    "layers": [],
}


def make_setting(project: Path, name: str, **settings: str) -> str:
    """A setting's value in force in the project (make print-NAME, with this run's tools), with
    the other settings given on make's command line."""
    done = subprocess.run(
        [*make_command(f"print-{name}", ".installed-tools", **settings), "-s"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout.strip()


def project_module(project: Path, relative_path: str):
    """A module of a baked project (code/sagemaker_runtime.py...), loaded from its file."""
    path = project / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_command(target: str, installed: str, **settings) -> list[str]:
    """`make TARGET` with this test run's virtualenv as the project's. -o takes the target's
    install marker (.installed-tools, .installed-dev) as made: the virtualenv has those
    requirements already, so make does not reinstall them."""
    venv = Path(sys.prefix)
    command = ["make", "--no-print-directory", "-o", str(venv / installed), target, f"VENV={venv}"]
    return command + [f"{key}={value}" for key, value in settings.items()]


def make_with_test_venv(
    project: Path,
    target: str,
    installed: str,
    env: dict[str, str],
    timeout: float = 120,
    **settings,
):
    """`make TARGET` in a baked project with this test run's virtualenv (make_command)."""
    return subprocess.run(
        make_command(target, installed, **settings),
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_doctor(project: Path, env: dict[str, str], timeout: float = 120, **settings: str):
    return make_with_test_venv(project, "doctor", ".installed-tools", env, timeout, **settings)


def doctor_report(stdout: str) -> dict[str, str]:
    """check name -> its line without the name: "OK ...", "WARN ...", "FAIL ... -> fix: ..."."""
    report = {}
    for line in stdout.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("OK", "WARN", "FAIL"):
            name, _, detail = rest.strip().partition(" ")
            report[name] = f"{status} {detail.strip()}"
    return report


def bake_with_data(output_dir: Path, slug: str = "mnist_on_sagemaker") -> Path:
    """A project baked in-process for the moto server's account, with tiny training,
    validation and test channels in data/ (what train-remote uploads)."""
    answers = {"aws_checks": "skip", "aws_account_id": MOTO_ACCOUNT_ID}
    cookiecutter(str(TEMPLATE_DIR), no_input=True, output_dir=str(output_dir),
                 extra_context=answers)  # fmt: skip
    for channel in ("training", "validation", "test"):
        folder = output_dir / slug / "data" / channel
        folder.mkdir(parents=True)
        np.savez(folder / "data.npz", x=np.zeros((4, 8, 8), "uint8"), y=np.zeros(4, "uint8"))
    return output_dir / slug


def trials_table(stdout: str) -> dict[str, dict]:
    """The table of trials tune-local and tune-status print: trial -> its cells by column,
    and whether it is starred (the best)."""
    lines = stdout.splitlines()
    [start] = [i for i, line in enumerate(lines) if line.startswith("  trial  ")]
    header = re.split(r"\s{2,}", lines[start].strip())
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        cells = dict(zip(header, re.split(r"\s{2,}", line[2:].strip()), strict=True))
        rows[cells["trial"]] = {**cells, "best": line.startswith("* ")}
    return rows


def request_body(request: dict) -> str:
    """A request's body as moto's recorder kept it (base64 when it was not text)."""
    body = request.get("body") or ""
    return base64.b64decode(body).decode(errors="replace") if request.get("body_encoded") else body


def actions(moto) -> list[str]:
    """The AWS requests the moto server recorded: X-Amz-Target, or the Action of a query
    request (STS, IAM), or method and URL (S3)."""
    named = []
    for request in moto.recorded_requests():
        action = re.search(r"Action=(\w+)", request_body(request))
        target = request["headers"].get("X-Amz-Target")
        named.append(target or (action and action[1]) or f"{request['method']} {request['url']}")
    return named


def bodies(moto, action: str) -> list[str]:
    """The bodies of the recorded requests of one action (named as helpers.actions names it)."""
    named = zip(actions(moto), moto.recorded_requests(), strict=True)
    return [request_body(request) for name, request in named if name == action]


def query_params(body: str, operation: str, service: str = "cloudformation") -> dict:
    """A query-protocol request's form (Parameters.member.1.ParameterKey=...) back into the
    parameters of `operation`, shaped as botocore's API model says."""
    form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
    model = botocore.session.get_session().get_service_model(service)
    convert = {"integer": int, "boolean": lambda text: text == "true"}

    def read(shape, key: str):
        if shape.type_name == "structure":
            found = {name: read(member, f"{key}.{name}".lstrip("."))
                     for name, member in shape.members.items()}  # fmt: skip
            return {name: value for name, value in found.items() if value is not None} or None
        if shape.type_name == "list":
            items = []
            while (item := read(shape.member, f"{key}.member.{len(items) + 1}")) is not None:
                items.append(item)
            return items or None
        value = form.get(key)
        return value if value is None else convert.get(shape.type_name, str)(value)

    return read(model.operation_model(operation).input_shape, "") or {}


def valid_against_the_model(moto, operation: str, service: str = "cloudformation") -> list[dict]:
    """Each recorded `operation` request's parameters, once botocore's validator passed them
    (moto accepts what AWS refuses). A query-protocol service's (CloudFormation) or a JSON
    one's (CodeBuild: named by its X-Amz-Target)."""
    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    if model.protocol == "query":
        sent = [query_params(body, operation, service) for body in bodies(moto, operation)]
    else:
        sent = [
            json.loads(body)
            for body in bodies(moto, f"{model.metadata['targetPrefix']}.{operation}")
        ]
    for params in sent:
        report = ParamValidator().validate(params, shape)
        assert not report.has_errors(), report.generate_report()
    return sent


def valid_params(service: str, operation: str, params: dict) -> dict:
    """params, once botocore's validator passed them (a request moto never saw)."""
    model = botocore.session.get_session().get_service_model(service)
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()
    return params


def every_request_valid(moto, services: tuple[str, ...]) -> int:
    """Every recorded request of `services` (JSON or query protocol) passes botocore's
    validator; how many did. S3's REST requests are not checked."""
    checked, recorded = 0, set(actions(moto))
    for service in services:
        model = botocore.session.get_session().get_service_model(service)
        prefix = model.metadata.get("targetPrefix", "") + "."
        for operation in model.operation_names:
            named = operation if model.protocol == "query" else prefix + operation
            if named in recorded:
                checked += len(valid_against_the_model(moto, operation, service))
    return checked


def put_image_tag(moto, repository: str, tag: str) -> None:
    """The tag in the moto server's ECR repository (created if needed), as a push leaves it:
    train-remote checks it is there before uploading or submitting anything."""
    ecr = moto.client("ecr")
    try:
        ecr.create_repository(repositoryName=repository)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    ecr.put_image(
        repositoryName=repository,
        imageManifest=json.dumps(IMAGE_MANIFEST),
        imageManifestMediaType=IMAGE_MANIFEST["mediaType"],
        imageTag=tag,
    )


def seed_ready_account(moto, project: Path) -> None:
    """What train-remote needs, made in the moto server: the ECR repository holding the
    image tag the project would run, the execution role trusting SageMaker, the bucket."""
    names = ("ECR_REPOSITORY", "IMAGE_TAG", "ROLE_ARN", "S3_OUTPUT_PATH")
    seed_account(moto, *(make_setting(project, name) for name in names))


def seed_account(moto, repository: str, tag: str, role_arn: str, s3_output_path: str) -> None:
    """seed_ready_account() with the settings given (smt's, in-process: no make)."""
    ecr = moto.client("ecr")
    ecr.create_repository(repositoryName=repository)
    ecr.put_image(
        repositoryName=repository,
        imageManifest=json.dumps(IMAGE_MANIFEST),
        imageManifestMediaType=IMAGE_MANIFEST["mediaType"],
        imageTag=tag,
    )
    moto.client("iam").create_role(
        RoleName=role_arn.rsplit("/", 1)[-1], AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST)
    )
    moto.client("s3").create_bucket(Bucket=s3_output_path.removeprefix("s3://").split("/")[0])


def iam_simulation(denied: tuple[str, ...] = ()):
    """A stub of IAM's SimulatePrincipalPolicy: each action in ActionNames.member.N is
    allowed, but those in `denied` (implicitDeny: no policy of the role grants them)."""

    def answer(form: dict[str, str]) -> bytes:
        asked = [value for key, value in form.items() if key.startswith("ActionNames.member.")]
        results = "".join(
            f"<member><EvalActionName>{escape(action)}</EvalActionName>"
            "<EvalResourceName>*</EvalResourceName><EvalDecision>"
            f"{'implicitDeny' if action in denied else 'allowed'}</EvalDecision></member>"
            for action in asked
        )
        return (
            '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            "<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
            f"<EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult>"
            "<ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata>"
            "</SimulatePrincipalPolicyResponse>"
        ).encode()

    return answer


def ready_behind_overlay(moto, overlay, project: Path) -> dict[str, str]:
    """An account make doctor passes (seed_ready_account) behind the overlay, with the stub
    for SimulatePrincipalPolicy, recording from here: the environment remote jobs run in."""
    seed_ready_account(moto, project)
    overlay.query_answers["SimulatePrincipalPolicy"] = iam_simulation()
    moto.start_recording()
    return moto.env(AWS_ENDPOINT_URL=overlay.url)


def hide_modules(folder: Path, *modules: str) -> str:
    """A PYTHONPATH entry under which importing each module fails, as in a cookiecutter
    installed without them."""
    for module in modules:
        (folder / module).mkdir(parents=True)
        (folder / module / "__init__.py").write_text(f"raise ImportError('{module} is hidden')\n")
    return str(folder)


def refused_argument(project: Path, name: str) -> None:
    """The project's run_estimator.trainer_arguments() with an argument ModelTrainer refuses,
    as a user's typo would add it."""
    definition = project / "run_estimator.py"
    text = definition.read_text()
    assert "    return arguments\n" in text
    definition.write_text(
        text.replace("    return arguments\n", f"    return {{**arguments, {name!r}: 1}}\n")
    )


PROJECT_TAG = {"ProjectName": "MNIST on SageMaker"}  # the baked project's PROJECT_NAME
OTHERS, OTHER_TAG = "other-project", {"ProjectName": "Other"}  # another project's


def price_list(prices: dict):
    """A stub of the Price List API's GetProducts for the overlay, in AWS's JSON: one SageMaker
    product of the instance type and component asked, at prices[component] an hour; for
    ServiceCode CodeBuild, the region's build products, one a usage type of
    prices["CodeBuild"] ({"g1.medium": dollars a minute}, named `USE1-Build-Min:g1.medium`)."""

    def product(attributes: dict, price: float, unit: str) -> str:
        dimension = {"unit": unit, "pricePerUnit": {"USD": str(price)}}
        terms = {"OnDemand": {"T1": {"priceDimensions": {"T1.D1": dimension}}}}
        return json.dumps({"product": {"attributes": attributes}, "terms": terms})

    def answer(request: dict, _moto_answer=None) -> dict:
        asked = {f["Field"]: f["Value"] for f in request["Filters"]}
        if request["ServiceCode"] == "CodeBuild":
            found = [product({**asked, "usagetype": f"USE1-Build-Min:{usage}"}, price, "Minutes")
                     for usage, price in prices.get("CodeBuild", {}).items()]  # fmt: skip
        elif asked["component"] in prices:
            found = [product({**asked, "productFamily": "ML Instance"},
                             prices[asked["component"]], "Hrs")]  # fmt: skip
        else:
            found = []
        return {"FormatVersion": "aws_v1", "PriceList": found}

    return answer
