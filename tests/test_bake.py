"""Baking the template: the generated project is complete, clean, and works as generated."""

import ast
import fnmatch
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter
from helpers import TEMPLATE_DIR, VENV_BIN, make_command, make_setting

EXPECTED_FILES = sorted(
    [
        ".cookiecutter.json",
        ".github/workflows/ci.yml",
        ".hadolint.yaml",
        ".pre-commit-config.yaml",
        ".dockerignore",
        ".gitignore",
        "Dockerfile",
        "Makefile",
        "README.md",
        "code/job_contract.py",
        "code/sagemaker_runtime.py",
        "code/train.py",
        "container/serve",
        "container/serving.py",
        "container/train",
        "infra/buildspec.yml",
        "infra/stack.yaml",
        "pyproject.toml",
        "requirements-dev.txt",
        "requirements-gpu.txt",
        "requirements-smt.txt",
        "requirements-tools.txt",
        "requirements-uv.txt",
        "requirements.txt",
        "run_estimator.py",
        "sagemaker.yaml",
        "scripts/prepare_data.py",
        "settings.env",
        "tests/conftest.py",
        "tests/test_job_contract.py",
        "tests/test_prepare_data.py",
        "tests/test_train.py",
    ]
)
MAKE_TARGETS = [
    "help",
    "venv",
    "data",
    "build",
    "build-remote",
    "login",
    "push",
    "train-local",
    "train-remote",
    "tune-local",
    "serve-local",
    "predict",
    "test",
    "clean",
    "update",
    "metrics",
    "doctor",
    "logs",
    "stop",
    "tune",
    "tune-status",
    "tune-stop",
    "deploy",
    "undeploy",
    "bootstrap",
    "status",
    "teardown",
    "runs",
    "ui",
]

REGIONS = {
    "us-east-1": "aws",
    "eu-west-1": "aws",
    "cn-north-1": "aws-cn",
    "us-gov-west-1": "aws-us-gov",
}
NAMES = {
    "MNIST on SageMaker": "mnist_on_sagemaker",
    "Modèle Ünïcode Démo": "modele_unicode_demo",
    "fraud detector 2": "fraud_detector_2",
}
INSTANCE_TYPES = ["ml.m5.large", "ml.g5.xlarge"]
MATRIX = [
    {"aws_region": region, "project_name": name, "instance_type": instance_type}
    for region, name, instance_type in itertools.product(REGIONS, NAMES, INSTANCE_TYPES)
    # every region and every name, each with one instance type, keeps the matrix small
    if INSTANCE_TYPES.index(instance_type) == list(NAMES).index(name) % 2
]


def bake(tmp_path, **answers) -> Path:
    """Bake in-process (the hooks still run as scripts), AWS checks skipped."""
    return Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            output_dir=str(tmp_path / "out"),
            extra_context={"aws_checks": "skip", **answers},
        )
    )


def files_of(project) -> list[str]:
    return sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def default_project(tmp_path_factory):
    return bake(tmp_path_factory.mktemp("default"))


def test_the_defaults_generate_exactly_the_expected_files(default_project):
    assert default_project.name == "mnist_on_sagemaker"
    assert files_of(default_project) == EXPECTED_FILES


@pytest.mark.parametrize("answers", MATRIX, ids=lambda a: "-".join(a.values()))
def test_varied_answers_generate_a_clean_project_with_those_answers(tmp_path, answers):
    project = bake(tmp_path, **answers)
    assert project.name == NAMES[answers["project_name"]]
    assert files_of(project) == EXPECTED_FILES
    copied_as_is = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())[
        "_copy_without_render"
    ]  # GitHub's ${{ }} and Docker's {{ }} formats: not Jinja
    for path in project.rglob("*"):
        relative = path.relative_to(project).as_posix()
        if path.is_file() and not any(fnmatch.fnmatch(relative, p) for p in copied_as_is):
            text = path.read_text(encoding="utf-8")
            assert "{{" not in text and "{%" not in text, f"unrendered Jinja in {path.name}"
    settings = (project / "settings.env").read_text()
    assert f"AWS_REGION = {answers['aws_region']}\n" in settings
    assert f"INSTANCE_TYPE = {answers['instance_type']}\n" in settings
    assert f"PROJECT_NAME = {answers['project_name']}\n" in settings
    partition = REGIONS[answers["aws_region"]]
    assert re.search(rf"ROLE_ARN = arn:{partition}:iam::\d{{12}}:role/", settings)
    saved = json.loads((project / ".cookiecutter.json").read_text())
    assert saved["project_name"] == answers["project_name"]


def test_every_python_file_parses_and_passes_ruff(default_project):
    for path in default_project.rglob("*.py"):
        ast.parse(path.read_text(), filename=str(path))
    done = subprocess.run(
        [str(VENV_BIN / "ruff"), "check", "--no-cache", "."],
        cwd=default_project,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("target", MAKE_TARGETS)
def test_make_dry_runs_every_target(default_project, target):
    done = subprocess.run(
        ["make", "-n", target], cwd=default_project, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "warning: undefined variable" not in done.stderr


def test_make_help_is_the_default_and_lists_every_target_with_a_line(default_project):
    command = make_command("help", ".installed-tools")
    command.remove("help")  # the default goal
    done = subprocess.run(command, cwd=default_project, capture_output=True, text=True)
    listed = re.findall(r"^  ([a-z-]+) +\S", done.stdout, re.MULTILINE)
    assert sorted(listed) == sorted(MAKE_TARGETS)
    assert "$(" not in done.stdout, "an unexpanded make variable in make help"


def fake_venv(tmp_path: Path) -> Path:
    """A VENV whose smt records its arguments and environment instead of running."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    smt = venv / "bin" / "smt"
    smt.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "record = {'argv': sys.argv[1:], 'env': dict(os.environ)}\n"
        "json.dump(record, open(os.environ['RECORD'], 'w'))\n"
    )
    smt.chmod(0o755)
    for marker in (".installed-tools", ".installed-dev"):  # newer than the requirements
        (venv / marker).touch()
    return venv


def recorded_smt(project: Path, tmp_path: Path, target: str, *overrides: str) -> dict:
    """What `make TARGET` hands the tools: smt's arguments and environment."""
    record = tmp_path / "record.json"
    done = subprocess.run(
        ["make", target, f"VENV={fake_venv(tmp_path)}", *overrides],
        cwd=project,
        env={**os.environ, "RECORD": str(record)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(record.read_text())


@pytest.mark.parametrize(
    "target", sorted(set(MAKE_TARGETS) - {"help", "venv", "test", "clean", "update"})
)
def test_each_make_target_of_the_tools_runs_smt_with_that_command(
    default_project, tmp_path, target
):
    assert recorded_smt(default_project, tmp_path, target)["argv"] == [target]


def test_a_setting_given_to_make_reaches_smt_in_its_environment(default_project, tmp_path):
    env = recorded_smt(
        default_project, tmp_path, "train-remote", "INSTANCE_COUNT=3", "HPARAMS=epochs=2 seed=1"
    )["env"]
    assert env["INSTANCE_COUNT"] == "3" and env["HPARAMS"] == "epochs=2 seed=1"
    assert "INSTANCE_COUNT=3" in env["MAKEFLAGS"]  # what smt checks against the command


def test_the_ci_workflow_keeps_githubs_expressions_and_lints_tests_and_builds(default_project):
    text = (default_project / ".github" / "workflows" / "ci.yml").read_text()
    workflow = yaml.safe_load(text)
    assert "${{ github.sha }}" in text  # not eaten by Jinja
    assert set(workflow["jobs"]) == {"lint", "test", "build"}
    steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "ruff check ." in steps and "make test" in steps
    assert any(step.startswith("make build") for step in steps)
    lint = [step.get("run", "") for step in workflow["jobs"]["lint"]["steps"]]
    assert "hadolint Dockerfile" in lint  # its pinned version: tests/test_pins.py


def test_pre_commit_runs_ruff_and_hadolint_at_pinned_revisions(default_project):
    config = yaml.safe_load((default_project / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: repo["rev"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "hadolint-docker"} <= set(hooks)
    assert all(re.fullmatch(r"v\d+\.\d+\.\d+", rev) for rev in hooks.values())


@pytest.mark.parametrize("accelerator", ["cpu", "gpu"])
def test_the_dockerfile_passes_hadolint_and_the_code_passes_ruff_format(tmp_path, accelerator):
    project = bake(tmp_path, accelerator=accelerator)
    done = subprocess.run(
        [str(VENV_BIN / "hadolint"), "Dockerfile"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout
    done = subprocess.run(
        [str(VENV_BIN / "ruff"), "format", "--check", "--no-cache", "."],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("accelerator", ["cpu", "gpu"])
def test_the_dockerfile_installs_in_one_layer_that_purges_its_compiler_with_code_last(
    tmp_path, accelerator
):
    project = bake(tmp_path, accelerator=accelerator)
    text = (project / "Dockerfile").read_text()
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "ARG BASE_IMAGE=python:3.12.12-slim-bookworm"
    assert [line for line in lines if line.startswith("FROM ")] == ["FROM ${BASE_IMAGE}"]
    runs = [run for run in re.split(r"\n(?=[A-Z]+ )", text) if run.startswith("RUN ")]
    installs = [run for run in runs if "gcc" in run]
    assert len(installs) == 1, "the compiler is installed by one RUN, so it can leave in it"
    assert "apt-get purge" in installs[0] and "$build_deps" in installs[0].split("purge")[1]
    assert "rm -rf /var/lib/apt/lists/*" in installs[0]
    assert "--mount" not in "\n".join(lines)
    copies = [line for line in lines if line.startswith("COPY")]
    assert copies[-1] == "COPY code/ /opt/ml/code/"
    assert lines[-1] == 'CMD ["train"]'
    assert any("SAGEMAKER_PROGRAM=train.py" in line for line in lines)
    requirements = "requirements-gpu.txt" if accelerator == "gpu" else "requirements.txt"
    assert f"ARG REQUIREMENTS={requirements}" in lines
    assert (
        'ENTRYPOINT ["tini", "-g", "--", "sh", "-c", "trap \'\' TERM; exec \\"$@\\"", "sh"]'
        in lines
    )


def test_a_gpu_project_builds_a_cuda_image_for_a_gpu_instance_and_runs_local_gpu(tmp_path):
    project = bake(tmp_path, accelerator="gpu")
    assert "tensorflow[and-cuda]==2.21.0" in (project / "requirements-gpu.txt").read_text()
    assert "INSTANCE_TYPE = ml.g5.xlarge\n" in (project / "settings.env").read_text()
    assert make_setting(project, "ACCELERATOR") == "gpu"  # local runs: local_gpu
    assert make_setting(project, "IMAGE_TAG").endswith("-gpu")


@pytest.mark.parametrize(
    "region, domain",
    [
        ("us-east-1", "amazonaws.com"),
        ("us-gov-west-1", "amazonaws.com"),
        ("cn-north-1", "amazonaws.com.cn"),
        ("cn-northwest-1", "amazonaws.com.cn"),
    ],
)
def test_the_ecr_registry_is_the_accounts_in_the_region_under_amazonaws_com_cn_in_china(
    default_project, region, domain
):
    registry = make_setting(
        default_project, "REGISTRY", AWS_ACCOUNT_ID="111122223333", AWS_REGION=region
    )
    assert registry == f"111122223333.dkr.ecr.{region}.{domain}"


def test_make_clean_removes_outputs_checkpoints_and_caches_and_keeps_the_run_history_and_data(
    tmp_path,
):
    project = bake(tmp_path)
    removed = ["outputs/a-run", "checkpoints", ".pytest_cache", "code/__pycache__",
               "tests/__pycache__"]  # fmt: skip
    kept = [
        "outputs/mlflow/mlflow.db",  # the runs' history (make runs, make ui)
        "outputs/mlflow/artifacts/1/a-run/artifacts/train.log",
        "data/training/data.npz",
        "notes/checkpoints.md",  # a file of yours, named like what is removed
        ".venv/lib/__pycache__/site.cpython-312.pyc",  # the virtualenv's own
    ]
    for name in [f"{folder}/a-run/file" for folder in removed] + kept:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(name)
    before = {name: (project / name).read_bytes() for name in files_of(project)}

    done = subprocess.run(["make", "clean"], cwd=project, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert [folder for folder in removed if (project / folder).exists()] == []
    assert {name: (project / name).read_bytes() for name in files_of(project)} == {
        name: text for name, text in before.items() if not name.startswith(tuple(removed))
    }


def test_requirements_are_pinned(default_project):
    names = ("requirements.txt", "requirements-gpu.txt", "requirements-tools.txt",
             "requirements-dev.txt")  # fmt: skip
    for name in names:
        for line in (default_project / name).read_text().splitlines():
            if line and not line.startswith(("#", "-r ")):
                assert re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[0-9][0-9A-Za-z.]*", line), line


def image_pins(project: Path, name: str) -> dict[str, str]:
    lines = (project / name).read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def test_the_cpu_and_gpu_images_pin_the_same_packages_but_their_tensorflow(default_project):
    cpu = image_pins(default_project, "requirements.txt")
    gpu = image_pins(default_project, "requirements-gpu.txt")
    assert cpu.pop("tensorflow-cpu") == gpu.pop("tensorflow[and-cuda]") == "2.21.0"
    assert cpu == gpu and cpu["tf-keras"] == "2.21.0"


def test_the_saved_answers_regenerate_the_same_project(tmp_path, default_project):
    saved = json.loads((default_project / ".cookiecutter.json").read_text())
    again = bake(tmp_path, **{k: v for k, v in saved.items() if not k.startswith("_")})
    assert files_of(again) == files_of(default_project)
    for name in files_of(again):
        if name != ".cookiecutter.json":
            assert (again / name).read_bytes() == (default_project / name).read_bytes(), name


def test_make_test_in_the_generated_project_passes(default_project):
    # VENV: this run's virtualenv already has the project's requirements-dev.txt
    done = subprocess.run(
        ["make", "test", f"VENV={sys.prefix}"],
        cwd=default_project,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"\d+ passed", done.stdout)
