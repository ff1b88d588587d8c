#!/usr/bin/env python3
"""Benchmark the edit-train loop of a generated project on this machine.

Each figure is measured several times and compared with a baseline measured in the same
run, on the same engines the end-to-end tests use (Docker, a base image, a moto server):

  rebuild after a code-only edit   vs a cold build (--no-cache)           target <= 5 s
  docker run IMAGE train           vs the floor: container start + import
                                      tensorflow, plus the training itself  target <= 1.3x
  make train-local                 vs a bare `docker run IMAGE train`     target <= 1.15x
  first make venv, uv (no cache)   vs the same with pip                   target <= 20 s
  cold build with uv               vs the same with pip                   target <= 0.7x
  smt help                         vs python -c pass                      target <= 0.3 s
  submitting a remote job          vs one raw boto3 CreateTrainingJob     reported
  image size                       vs a naive single-stage build          target <= 0.85x
  the image's recipe: size, cold     vs the previous recipe (tensorflow,    target <= 1.6 GB
    build, push to a registry           Keras 3, scipy...), same run
  training steps/s in a container  vs train.py on this host               target >= 0.95x
  serving over HTTP (docker run    vs the same SavedModel called          reported
    IMAGE serve, 16 clients)          in-process, one caller
  and the figures of streamed channels (bench/streaming.py): peak memory and wall time of an
  epoch at 1x, 4x and 16x a base size, streamed against in-memory steps/s

  and the cost of tracking every run in MLflow (bench/tracking_cost.py): the MLflow pins'
  extra install time in make venv, import mlflow, a run's first and later syncs

  python bench/run.py --only streaming   only those figures (or --only image: the image's
                                         size, cold build and push; --only tracking: MLflow's
                                         figures); their rows of bench/RESULTS.md replaced,
                                         the others kept

  python bench/run.py            the full run (three builds from scratch: about 20 minutes)
  python bench/run.py --quick    one repeat, nothing from scratch but a uv venv: proves it runs

It prints the table and writes bench/RESULTS.md (full runs only). A missed target is
reported, never an error: the exit status is non-zero only when the bench itself broke.
"""

import argparse
import base64
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]
import streaming  # noqa: E402
import tracking_cost  # noqa: E402
from engines import REGISTRY_USER, load, sagemaker_host, serve_registry, serving  # noqa: E402
from helpers import free_port  # noqa: E402

PYTHON = sys.executable
VENV = Path(sys.prefix)
EPOCHS = 3  # the start-up figures: a short run, as in the issue that set their targets
STEPS_EPOCHS = 8  # the steps/s figure: enough epochs for a steady median
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"


def sh(command, *, cwd=None, env=None, check=True, timeout=3600) -> tuple[float, str]:
    """Run a command; (seconds it took, its output)."""
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    seconds = time.perf_counter() - started
    if check and done.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, command))} failed:\n{done.stdout[-3000:]}")
    return seconds, done.stdout


def median_of(repeats: int, measure) -> float:
    return statistics.median(measure() for _ in range(repeats))


def steps_per_second(log: str) -> float:
    """Median steps/s over the epochs after the first (which includes tracing)."""
    rates = [
        float(r) for r in re.findall(r"epoch \d+: \d+ steps in [\d.]+ s \(([\d.]+) steps/s", log)
    ]
    if len(rates) < 2:
        sys.exit(f"bench: no steps/s lines in the training log:\n{log[-2000:]}")
    return statistics.median(rates[1:])


class Project:
    """A project baked from the template, with digits data and its image built."""

    def __init__(self, workdir: Path, base_image: str):
        # BASE_IMAGE in the environment: on make's command line, `make data` would refuse it.
        # The project's makes are a user's, not sub-makes of `make bench`: without its
        # MAKEFLAGS, which carry BENCH_ARGS (smt refuses a variable no goal of make reads).
        outer_make = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
        self.env = {k: v for k, v in os.environ.items() if k not in outer_make}
        self.env.update(PATH=f"{VENV / 'bin'}:{os.environ['PATH']}", BASE_IMAGE=base_image)
        self.settings = [f"VENV={VENV}"]
        self.base_image = base_image
        sh(
            [
                PYTHON,
                "-m",
                "cookiecutter",
                "--no-input",
                "-o",
                str(workdir),
                str(ROOT),
                "project_name=Bench",
                "aws_checks=skip",
            ],
            env=self.env,
        )
        self.path = workdir / "bench"
        self.make("data", "DATASET=digits")

    def make(self, *args, check=True) -> tuple[float, str]:
        return sh(
            ["make", "--no-print-directory", *args, *self.settings],
            cwd=self.path,
            env=self.env,
            check=check,
        )

    def image(self) -> str:
        return self.make("-s", "print-IMAGE")[1].strip()

    def layers(self, image: str) -> list[str]:
        return json.loads(
            sh(["docker", "image", "inspect", "-f", "{{json .RootFS.Layers}}", image])[1]
        )

    def edit_code(self, n: int) -> None:
        train_py = self.path / "code" / "train.py"
        # Unique every time: the image tag follows the content, so a repeated edit would
        # find its image already built.
        train_py.write_text(train_py.read_text() + f"# bench edit {n} {time.time_ns()}\n")

    def host(self, root: Path, epochs: int = EPOCHS) -> list[str]:
        """/opt/ml under root as SageMaker lays it out for one host; its docker run mounts."""
        shutil.rmtree(root, ignore_errors=True)
        return sagemaker_host(root, self.path / "data", {"epochs": str(epochs)})

    def bare_run(self, root: Path, epochs: int = EPOCHS) -> tuple[float, str]:
        """`docker run IMAGE train`, as SageMaker starts a training container."""
        mounts = self.host(root, epochs)
        command = ["docker", "run", "--rm", "--hostname", "algo-1", *mounts, self.image(), "train"]
        return sh(command, timeout=900)


def figure_rebuild(project: Project, repeats: int, quick: bool) -> dict:
    times, only_code_layer = [], True
    for n in range(repeats):
        before = project.image()
        project.edit_code(n)
        seconds, output = project.make("build")
        if "building " not in output:
            sys.exit(f"bench: the edit did not trigger a build:\n{output}")
        times.append(seconds)
        old, new = project.layers(before), project.layers(project.image())
        only_code_layer &= old[:-1] == new[:-1] and old[-1] != new[-1]
    # The cold build last: built first, its fresh layers would become the cache.
    cold = None if quick else cold_build(project, "uv")
    value = statistics.median(times)
    return {
        "figure": "rebuild after a code-only edit",
        "value": f"{value:.2f} s",
        "baseline": "cold build (--no-cache)",
        "baseline_value": f"{cold:.1f} s" if cold else "skipped (--quick)",
        "ratio": f"{value / cold:.3f}" if cold else "",
        "target": "<= 5 s, only the code layer changes",
        "met": value <= 5 and only_code_layer,
        "note": "only the code layer changed" if only_code_layer else "OTHER LAYERS CHANGED",
    }


def cold_build(project: Project, installer: str) -> float:
    """A build from scratch (--no-cache), with uv or with pip installing the packages."""
    if installer not in COLD_BUILDS:
        COLD_BUILDS[installer] = sh(
            [
                "docker",
                "build",
                "--no-cache",
                "-q",
                "--build-arg",
                f"BASE_IMAGE={project.base_image}",
                "--build-arg",
                f"INSTALLER={installer}",
                "-t",
                f"bench-cold-{installer}:1",
                ".",
            ],
            cwd=project.path,
            timeout=3600,
        )[0]
    return COLD_BUILDS[installer]


COLD_BUILDS: dict[str, float] = {}


def figure_cold_build(project: Project, quick: bool) -> dict:
    uv, pip = (None, None) if quick else (cold_build(project, "uv"), cold_build(project, "pip"))
    return {
        "figure": "cold build (--no-cache), uv installs",
        "value": f"{uv:.1f} s" if uv else "skipped (--quick)",
        "baseline": "the same build, pip installs",
        "baseline_value": f"{pip:.1f} s" if pip else "skipped (--quick)",
        "ratio": f"{uv / pip:.2f}" if uv else "",
        "target": "<= 0.7x",
        "met": uv / pip <= 0.7 if uv else None,
        "note": "",
    }


def figure_first_venv(project: Project, scratch: Path, quick: bool) -> dict:
    """The project's first `make venv`, as on a fresh machine: no pip or uv cache."""

    def fresh_venv(installer: str) -> float:
        venv = scratch / f"venv-{installer}"
        shutil.rmtree(venv, ignore_errors=True)
        cache = scratch / f"cache-{installer}"
        env = {**project.env, "PIP_NO_CACHE_DIR": "1", "UV_CACHE_DIR": str(cache)}
        env["PATH"] = os.pathsep.join(  # no uv of ours on PATH: the project brings its own
            d for d in env["PATH"].split(os.pathsep) if not Path(d, "uv").exists()
        )
        command = ["make", "--no-print-directory", "venv", f"VENV={venv}", f"INSTALLER={installer}"]
        seconds, _ = sh(command, cwd=project.path, env=env)
        shutil.rmtree(venv, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        return seconds

    uv = fresh_venv("uv")
    pip = None if quick else fresh_venv("pip")
    return {
        "figure": "first make venv (no cache), uv installs",
        "value": f"{uv:.1f} s",
        "baseline": "the same, pip installs",
        "baseline_value": f"{pip:.1f} s" if pip else "skipped (--quick)",
        "ratio": f"{uv / pip:.2f}" if pip else "",
        "target": "<= 20 s",
        "met": uv <= 20,
        "note": "",
    }


def trained_seconds(log: str) -> float:
    """The training's own time, as train.py reports it (data, fit, evaluation, saving)."""
    found = re.findall(r"^trained in ([\d.]+) s", log, re.MULTILINE)
    if not found:
        sys.exit(f"bench: no 'trained in' line in the training log:\n{log[-2000:]}")
    return float(found[-1])


def figures_train(project: Project, repeats: int, scratch: Path) -> list[dict]:
    """A bare `docker run IMAGE train` against the floor, and make train-local against it."""
    image = project.image()
    hparams = f"HPARAMS=epochs={EPOCHS}"
    project.make("train-local", hparams)  # warm: the venv stamp, the compose network
    local = median_of(repeats, lambda: project.make("train-local", hparams)[0])
    logs = []

    def bare() -> float:
        seconds, log = project.bare_run(scratch / "opt-ml")
        logs.append(log)
        return seconds

    def floor() -> float:
        command = ["docker", "run", "--rm", "--entrypoint", "python", image, "-c"]
        return sh([*command, "import tensorflow"], timeout=300)[0]

    baseline = median_of(repeats, bare)
    training = statistics.median(trained_seconds(log) for log in logs)
    floor_seconds = median_of(repeats, floor)
    least = floor_seconds + training
    return [
        {
            "figure": f"docker run IMAGE train (1 host, digits, {EPOCHS} epochs)",
            "value": f"{baseline:.1f} s",
            "baseline": "floor: docker run + import tensorflow, plus the training itself",
            "baseline_value": f"{floor_seconds:.1f} + {training:.1f} s",
            "ratio": f"{baseline / least:.2f}",
            "target": "<= 1.3x",
            "met": baseline / least <= 1.3,
            "note": f"overhead {baseline - least:.1f} s",
        },
        {
            "figure": f"make train-local (1 host, digits, {EPOCHS} epochs)",
            "value": f"{local:.1f} s",
            "baseline": "bare docker run IMAGE train",
            "baseline_value": f"{baseline:.1f} s",
            "ratio": f"{local / baseline:.2f}",
            "target": "<= 1.15x",
            "met": local / baseline <= 1.15,
            "note": f"overhead {local - baseline:.1f} s",
        },
    ]


def figure_help(project: Project, repeats: int) -> dict:
    launcher = [PYTHON, "-m", "smt", "help"]
    value = median_of(max(repeats, 5), lambda: sh(launcher, cwd=project.path)[0])
    baseline = median_of(max(repeats, 5), lambda: sh([PYTHON, "-c", "pass"])[0])
    return {
        "figure": "smt help (make help's tools side)",
        "value": f"{value:.3f} s",
        "baseline": "python -c pass",
        "baseline_value": f"{baseline:.3f} s",
        "ratio": f"{value / baseline:.2f}",
        "target": "<= 0.3 s",
        "met": value <= 0.3,
        "note": f"{value - baseline:.3f} s more than the interpreter alone",
    }


def moto_server(scratch: Path):
    port = free_port()
    process = subprocess.Popen(
        [str(VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=scratch,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    sys.exit("bench: moto_server did not start")


def figure_remote_submit(project: Project, repeats: int, scratch: Path) -> dict:
    process, url = moto_server(scratch)
    try:
        env = {key: value for key, value in project.env.items() if not key.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=url,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1",
            SAGEMAKER_VALIDATE_ROLE="false",
        )
        sh([str(VENV / "bin" / "aws"), "s3", "mb", "s3://bench"], env=env)
        sh(
            [
                str(VENV / "bin" / "aws"),
                "s3",
                "sync",
                str(project.path / "data"),
                "s3://bench/data",
            ],
            env=env,
        )
        # the launcher checks the image is in ECR before it submits: as `make push` leaves it
        sh(
            [str(VENV / "bin" / "aws"), "ecr", "create-repository", "--repository-name", "bench"],
            env=env,
        )
        sh(
            [str(VENV / "bin" / "aws"), "ecr", "put-image", "--repository-name", "bench"]
            + ["--image-tag", "1", "--image-manifest", json.dumps(BENCH_MANIFEST)],
            env=env,
        )
        launcher = [PYTHON, "-m", "smt", "train-remote", "--ecr-repository", "bench"]
        launcher += ["--image-tag", "1", "--role-arn", ROLE]
        launcher += ["--aws-region", "us-east-1", "--instance-type", "ml.m5.large"]
        launcher += ["--s3-output-path", "s3://bench/out", "--data-s3", "s3://bench/data"]
        launcher += ["--wait", "0", "--hparams", "epochs=1"]
        value = median_of(repeats, lambda: sh(launcher, cwd=project.path, env=env)[0])
        raw = RAW_CREATE_TRAINING_JOB.format(role=ROLE)
        baseline = median_of(repeats, lambda: sh([PYTHON, "-c", raw], env=env)[0])
    finally:
        process.terminate()
        process.wait(timeout=10)
    return {
        "figure": "submit a remote job (launcher, moto server)",
        "value": f"{value:.2f} s",
        "baseline": "one raw boto3 CreateTrainingJob (own process)",
        "baseline_value": f"{baseline:.2f} s",
        "ratio": f"{value / baseline:.1f}",
        "target": "report",
        "met": None,
        "note": f"the SDK's import and setup cost {value - baseline:.1f} s",
    }


# A single-image manifest (Docker v2 schema 2), as a push of a classic build leaves it.
BENCH_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 1,
        "digest": "sha256:" + "a" * 64,
    },
    "layers": [],
}
RAW_CREATE_TRAINING_JOB = """
import boto3, uuid
boto3.client("sagemaker").create_training_job(
    TrainingJobName="raw-" + uuid.uuid4().hex[:8], RoleArn="{role}",
    AlgorithmSpecification={{"TrainingImage": "bench:1", "TrainingInputMode": "File"}},
    OutputDataConfig={{"S3OutputPath": "s3://bench/out"}},
    ResourceConfig={{"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}},
    StoppingCondition={{"MaxRuntimeInSeconds": 3600}})
"""
# The same packages, the obvious way: one stage, compilers kept, pip's cache kept.
NAIVE_DOCKERFILE = """ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y gcc libc6-dev \\
    $(python3 -c 'import os, sysconfig; print("" if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else "python3-dev")') \\
    && python3 -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt
COPY code/ /opt/ml/code/
ENV PATH=/opt/venv/bin:$PATH SAGEMAKER_PROGRAM=train.py
CMD ["train"]
"""  # noqa: E501


def image_bytes(image: str) -> int:
    return int(sh(["docker", "image", "inspect", "-f", "{{.Size}}", image])[1])


def figure_image_size(project: Project, quick: bool) -> dict:
    value = image_bytes(project.image())
    if quick:
        baseline = None
    else:
        (project.path / "Dockerfile.naive").write_text(NAIVE_DOCKERFILE)
        sh(
            [
                "docker",
                "build",
                "-q",
                "-f",
                "Dockerfile.naive",
                "--build-arg",
                f"BASE_IMAGE={project.base_image}",
                "-t",
                "bench-naive:1",
                ".",
            ],
            cwd=project.path,
        )
        baseline = image_bytes("bench-naive:1")
    ratio = value / baseline if baseline else None
    return {
        "figure": "image size",
        "value": f"{value / 1e9:.2f} GB",
        "baseline": "naive single-stage build, same requirements",
        "baseline_value": f"{baseline / 1e9:.2f} GB" if baseline else "skipped (--quick)",
        "ratio": f"{ratio:.2f}" if ratio else "",
        "target": "<= 0.85x",
        "met": ratio <= 0.85 if ratio else None,
        "note": "",
    }


# The template before the CPU image installed tensorflow-cpu (issue 22): its Dockerfile and
# requirements are the recipe the image figure compares with.
PREVIOUS_RECIPE = "eeb05a4"
RECIPE_FILES = ("Dockerfile", ".dockerignore", "requirements.txt", "requirements-gpu.txt",
                "requirements-uv.txt")  # fmt: skip


def previous_recipe(project: Project, scratch: Path) -> Path:
    """A build context: this project's code/ and container/, the previous recipe's files
    (the template at PREVIOUS_RECIPE, baked as this project was)."""
    template, baked = scratch / "previous-template", scratch / "previous-bake"
    template.mkdir()
    archive = ["git", "-C", str(ROOT), "archive", PREVIOUS_RECIPE]
    tarball = subprocess.run(archive, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(template)], input=tarball, check=True)
    command = [PYTHON, "-m", "cookiecutter", "--no-input", "-o", str(baked), str(template)]
    sh([*command, "project_name=Bench", "aws_checks=skip"], env=project.env)
    context = scratch / "previous"
    for folder in ("code", "container"):
        shutil.copytree(project.path / folder, context / folder)
    for name in RECIPE_FILES:
        shutil.copy(baked / "bench" / name, context / name)
    return context


def push_seconds(image: str, scratch: Path) -> float:
    """docker push of the image to a registry of its own on localhost (nothing in it yet)."""
    password, storage = "bench", scratch / f"registry-{time.time_ns()}"
    storage.mkdir()
    with serve_registry(storage, password) as address:
        config = scratch / "docker-config"
        config.mkdir(exist_ok=True)
        auth = base64.b64encode(f"{REGISTRY_USER}:{password}".encode()).decode()
        (config / "config.json").write_text(json.dumps({"auths": {address: {"auth": auth}}}))
        remote = f"{address}/bench-recipe:1"
        sh(["docker", "tag", image, remote])
        try:
            return sh(["docker", "--config", str(config), "push", remote], timeout=1800)[0]
        finally:
            sh(["docker", "rmi", remote], check=False)


def recipe_figures(image: str, build: float | None, scratch: Path) -> dict:
    return {"size": image_bytes(image), "build": build, "push": push_seconds(image, scratch)}


def described(image: dict) -> str:
    build = f", build {image['build']:.0f} s" if image["build"] else ""
    return f"{image['size'] / 1e9:.2f} GB{build}, push {image['push']:.1f} s"


def figure_recipe(project: Project, scratch: Path, quick: bool) -> dict:
    """This recipe's image against the previous recipe's, each built from scratch and
    pushed to an empty registry, one after the other. --quick: the image already built,
    pushed; the previous recipe is not built."""
    if quick:
        new, old = recipe_figures(project.image(), None, scratch), None
    else:
        new = recipe_figures("bench-cold-uv:1", cold_build(project, "uv"), scratch)
        command = ["docker", "build", "--no-cache", "-q", "-t", "bench-previous:1"]
        command += ["--build-arg", f"BASE_IMAGE={project.base_image}", "."]
        build = sh(command, cwd=previous_recipe(project, scratch), timeout=3600)[0]
        old = recipe_figures("bench-previous:1", build, scratch)
    ratios = ", ".join(f"{key} {new[key] / old[key]:.2f}" for key in new) if old else ""
    return {
        "figure": "the image: size, cold build (uv), push to an empty registry",
        "value": described(new),
        "baseline": f"the previous recipe ({PREVIOUS_RECIPE}: tensorflow, Keras 3, scipy)",
        "baseline_value": described(old) if old else "skipped (--quick)",
        "ratio": ratios,
        "target": "<= 1.6 GB",
        "met": new["size"] <= 1.6e9,
        "note": "",
    }


def host_train(project: Project, scratch: Path, epochs: int) -> str:
    """train.py run on this host, with /opt/ml's layout under scratch: its log."""
    tree = scratch / "host-opt-ml"
    project.host(tree, epochs)
    env = {
        **project.env,
        **{
            f"SM_CHANNEL_{channel.upper()}": str(tree / "input/data" / channel)
            for channel in ("training", "validation", "test")
        },
        "SM_MODEL_DIR": str(tree / "model"),
        "SM_OUTPUT_DIR": str(tree / "output"),
        "CHECKPOINT_DIR": str(tree / "checkpoints"),
        "SM_INPUT_CONFIG_DIR": str(tree / "input" / "config"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    command = [PYTHON, str(project.path / "code" / "train.py"), "--epochs", str(epochs)]
    return sh(command, env=env)[1]


def figure_steps(project: Project, scratch: Path) -> dict:
    _, container_log = project.bare_run(scratch / "opt-ml", STEPS_EPOCHS)
    host_log = host_train(project, scratch, STEPS_EPOCHS)
    container, host = steps_per_second(container_log), steps_per_second(host_log)
    ratio = container / host
    return {
        "figure": "training steps/s in the container",
        "value": f"{container:.0f} steps/s",
        "baseline": "the same train.py on this host",
        "baseline_value": f"{host:.0f} steps/s",
        "ratio": f"{ratio:.2f}",
        "target": ">= 0.95x",
        "met": ratio >= 0.95,
        "note": f"median over epochs 2-{STEPS_EPOCHS}",
    }


def figure_serving(project: Project, scratch: Path, quick: bool) -> dict:
    """The newest local run's model: requests of one example from 16 clients to `docker run
    IMAGE serve`, and the same SavedModel's signature called here in a loop."""
    import numpy as np
    import tensorflow as tf

    requests = 200 if quick else 2000
    model = scratch / "serve-model"
    shutil.rmtree(model, ignore_errors=True)
    model.mkdir()
    sh(["tar", "-xzf", str(project.path / "outputs" / "latest" / "model.tar.gz"), "-C", str(model)])
    with np.load(project.path / "data" / "test" / "data.npz") as data:
        example = data["x"][:1].astype("float32")  # as stored: the model scales it
    body = json.dumps({"instances": example.tolist()}).encode()
    with serving(project.image(), model) as server:
        load(server.port, body, {"Content-Type": "application/json"}, 16, 32)  # warm
        http = load(server.port, body, {"Content-Type": "application/json"}, 16, requests)
    if http["failures"]:
        sys.exit(f"bench: serving failed: {http['failures'][:3]}")
    signature = tf.saved_model.load(str(model / "1")).signatures["serving_default"]
    calls = []
    for _ in range(requests + 20):  # the first 20: tracing, warm-up
        started = time.perf_counter()
        next(iter(signature(tf.constant(example)).values())).numpy()
        calls.append(time.perf_counter() - started)
    calls = calls[20:]
    served, direct = requests / http["seconds"], len(calls) / sum(calls)
    p50, p99 = np.percentile(np.asarray(http["latencies"]) * 1000, [50, 99])
    c50, c99 = np.percentile(np.asarray(calls) * 1000, [50, 99])
    return {
        "figure": f"serving over HTTP, 1 example a request, 16 clients ({requests} requests)",
        "value": f"{served:.0f} requests/s",
        "baseline": "the same SavedModel called in-process, one caller",
        "baseline_value": f"{direct:.0f} calls/s",
        "ratio": f"{served / direct:.2f}",
        "target": "report",
        "met": None,
        "note": f"p50/p99 {p50:.1f}/{p99:.1f} ms; in-process {c50:.2f}/{c99:.2f} ms",
    }


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    docker = sh(["docker", "version", "-f", "{{.Server.Version}}"], check=False)[1].strip()
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
        f"{memory / 2**20:.0f} GiB, Docker engine {docker}, Python {platform.python_version()}"
    )


def table(rows: list[dict]) -> str:
    lines = [
        "| figure | value | baseline (same run) | baseline value | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(
            f"| {r['figure']} | {r['value']}{note} | {r['baseline']} | "
            f"{r['baseline_value']} | {r['ratio']} | {r['target']} | {met} |"
        )
    return "\n".join(lines)


BENCH_IMAGES = ("bench-cold-uv:1", "bench-cold-pip:1", "bench-naive:1", "bench-previous:1")


def streaming_figures(project: Project, scratch: Path, quick: bool) -> list[dict]:
    return [
        *streaming.figures_memory(project, sh, scratch, quick),
        *streaming.figures_throughput(project, sh, scratch, quick),
    ]


def image_figures(project: Project, scratch: Path, quick: bool) -> list[dict]:
    return [figure_image_size(project, quick), figure_recipe(project, scratch, quick)]


def tracking_figures(project: Project, scratch: Path, quick: bool) -> list[dict]:
    latest = project.path / "outputs" / "latest" / "train.log"  # a real train.log to record
    log = latest.read_text() if latest.is_file() else host_train(project, scratch, EPOCHS)
    return tracking_cost.figures(project, sh, scratch, quick, log)


# --only NAME: (its figures, the beginnings of their rows in RESULTS.md)
ONLY = {
    "streaming": (streaming_figures, streaming.ROW_PREFIXES),
    "image": (image_figures, ("| image size", "| the image: size, cold build")),
    "tracking": (tracking_figures, tracking_cost.ROW_PREFIXES),
}
NO_IMAGE = {"tracking"}  # figures that need no image: --only them builds none


def only(name: str, project: Project, scratch: Path, quick: bool) -> int:
    """Some figures alone: printed, and in place of their rows of RESULTS.md."""
    figures, prefixes = ONLY[name]
    rows = figures(project, scratch, quick)
    project.make("clean")
    sh(["docker", "rmi", "-f", project.image(), *BENCH_IMAGES], check=False)
    report = table(rows)
    print(report)
    if quick:
        return 0
    results = ROOT / "bench" / "RESULTS.md"
    lines = results.read_text().splitlines()
    said = f"The {name} rows: "
    text = [line for line in lines if not line.startswith(("|", said))]
    kept = [line for line in lines[2:] if line.startswith("|") and not line.startswith("|---")]
    kept = [line for line in kept[1:] if not line.startswith(prefixes)]
    when = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    text = [
        *filter(None, text),
        f"{said}`python bench/run.py --only {name}`"
        f" on {when}, on the same machine; the other rows are the full run's.",
    ]
    report = table(rows).splitlines()
    results.write_text(
        "\n\n".join(text) + "\n\n" + "\n".join([*report[:2], *kept, *report[2:]]) + "\n"
    )
    print(f"bench: wrote bench/RESULTS.md (the {name} rows)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, no cold builds")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=sorted(ONLY), help="only these figures")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    sh(["bash", str(ROOT / "tests/infra/docker-engine.sh"), "start"], timeout=600)
    base_image = sh(["bash", str(ROOT / "tests/infra/base-image.sh")])[1].strip().splitlines()[-1]
    with tempfile.TemporaryDirectory(prefix="sm-template-bench-") as scratch_name:
        scratch = Path(scratch_name)
        print("bench: baking a project and building its image ...", flush=True)
        project = Project(scratch, base_image)
        if args.only not in NO_IMAGE:
            project.make("build")
        if args.only:
            return only(args.only, project, scratch, args.quick)
        rows = [figure_rebuild(project, repeats, args.quick)]
        print("bench: training ...", flush=True)
        train_rows = figures_train(project, repeats, scratch)
        rows += [
            *train_rows,
            figure_help(project, repeats),
            figure_remote_submit(project, repeats, scratch),
            *image_figures(project, scratch, args.quick),
            figure_steps(project, scratch),
            *streaming_figures(project, scratch, args.quick),
            figure_serving(project, scratch, args.quick),
            figure_cold_build(project, args.quick),
            figure_first_venv(project, scratch, args.quick),
            *tracking_figures(project, scratch, args.quick),
        ]
        project.make("clean")
        built = sh(["docker", "images", "-q", "bench"], check=False)[1].split()
        sh(
            ["docker", "rmi", "-f", *BENCH_IMAGES, *built],
            check=False,
        )
    report = table(rows)
    print(report)
    if not args.quick:
        (ROOT / "bench" / "RESULTS.md").write_text(
            f"# Benchmark results\n\n`python bench/run.py` on "
            f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {machine()}; "
            f"median of {repeats} runs per figure, baselines measured in the same run.\n\n"
            f"{report}\n"
        )
        print("bench: wrote bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
