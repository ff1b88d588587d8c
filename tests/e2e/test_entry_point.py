"""The image's `train` as each of its clients starts it: SageMaker's bare `docker run IMAGE
train`, a job whose code comes from S3, and the SDK v2's local mode (SDK v3's local mode,
one host and two, is in test_the_loop.py and test_scale_out.py). train.py runs in the
process SageMaker started, so each host imports TensorFlow once."""

import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
from engines import image_of, run, sagemaker_host

# The SDK v2 as users still run it (its local mode), pinned; it gets a virtualenv of its own.
SDK_V2 = "sagemaker==2.257.7"
SDK_V2_LOCAL_RUN = """import sys
from sagemaker.estimator import Estimator
from sagemaker.local import LocalSession

image, data, out = sys.argv[1:]
session = LocalSession()
session.config = {"local": {"local_code": True}}
estimator = Estimator(
    image_uri=image, instance_count=1, instance_type="local", hyperparameters={"epochs": 1},
    role="arn:aws:iam::123456789012:role/SageMakerExecutionRole",
    output_path=f"file://{out}", sagemaker_session=session,
)
estimator.fit({c: f"file://{data}/{c}" for c in ("training", "validation", "test")})
"""
# A program that records how it was started, then runs train.py as SageMaker would.
PROBE = """import json, os, runpy, sys
facts = {"ppid": os.getppid(), "tensorflow_before": "tensorflow" in sys.modules,
         "argv": sys.argv[1:]}
os.makedirs("/opt/ml/output/data", exist_ok=True)
json.dump(facts, open("/opt/ml/output/data/probe.json", "w"))
runpy.run_path("/opt/ml/code/train.py", run_name="__main__")
"""


@pytest.fixture(scope="module")
def image(project):
    return image_of(project["path"], project["env"], project["settings"])


def docker_train(image: str, mounts: list[str], *options: str) -> tuple[int, str]:
    done = run(
        ["docker", "run", "--rm", *options, *mounts, image, "train"], check=False, timeout=600
    )
    return done.returncode, done.stdout


def code_copy(project, tmp_path: Path) -> Path:
    code = tmp_path / "code"
    shutil.copytree(project["path"] / "code", code, ignore=shutil.ignore_patterns("__pycache__"))
    return code


def test_the_image_ships_tini_and_the_toolkit_but_no_compiler_and_no_package_lists(image):
    probe = (
        "command -v tini; command -v gcc cc; ls /var/lib/apt/lists | grep -v '^lock$' | head -1;"
        " python -c 'import gethostname, sagemaker_training; print(\"toolkit ok\")'"
    )
    done = run(["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", probe], check=False)
    assert done.stdout.split() == ["/usr/bin/tini", "toolkit", "ok"], done.stdout


def test_a_bare_docker_run_trains_in_the_process_sagemaker_started(project, image, tmp_path):
    code = code_copy(project, tmp_path)
    (code / "probe.py").write_text(PROBE)
    host = tmp_path / "opt-ml"
    mounts = sagemaker_host(host, project["path"] / "data", {"epochs": "1"}, code=code)
    status, log = docker_train(
        image, mounts, "--hostname", "algo-1", "-e", "SAGEMAKER_PROGRAM=probe.py"
    )
    assert status == 0, log[-3000:]
    facts = json.loads((host / "output" / "data" / "probe.json").read_text())
    # PID 1 is tini: train.py's parent is it, not a toolkit process that imported TF first
    assert facts == {"ppid": 1, "tensorflow_before": False, "argv": ["--epochs", "1"]}
    assert (host / "model" / "1" / "saved_model.pb").is_file()
    assert (host / "output" / "success").exists() and not (host / "output" / "failure").exists()
    assert "METRIC test:accuracy=" in log


def test_a_hyperparameter_train_py_rejects_leaves_its_reason_as_the_failure(
    project, image, tmp_path
):
    host = tmp_path / "opt-ml"
    mounts = sagemaker_host(host, project["path"] / "data", {"epochs": "0"})
    status, log = docker_train(image, mounts, "--hostname", "algo-1")
    assert status != 0
    failure = (host / "output" / "failure").read_text()
    assert failure == "hyperparameter epochs='0' is out of range; it must be >= 1\n", log[-2000:]
    assert not (host / "output" / "success").exists()


def test_a_train_py_that_cannot_start_leaves_a_one_line_failure(project, image, tmp_path):
    code = code_copy(project, tmp_path)
    (code / "train.py").write_text((code / "train.py").read_text() + "\ndef broken(:\n")
    host = tmp_path / "opt-ml"
    mounts = sagemaker_host(host, project["path"] / "data", {"epochs": "1"}, code=code)
    status, log = docker_train(image, mounts, "--hostname", "algo-1")
    assert status == 1
    failure = (host / "output" / "failure").read_text()
    assert failure.startswith("SyntaxError: ") and "\n" not in failure.rstrip(), failure
    assert "Traceback" in log  # the whole story stays in the log


def test_code_from_an_s3_submit_directory_is_downloaded_and_run(project, image, moto, tmp_path):
    """The form the SDK and tuning jobs send: sagemaker_submit_directory=s3://.../sourcedir.tar.gz."""
    code = code_copy(project, tmp_path)
    train_py = code / "train.py"
    train_py.write_text("print('code from S3')\n" + train_py.read_text())
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted(code.iterdir()):
            tar.add(path, arcname=path.name)
    moto.client("s3").create_bucket(Bucket="code")
    moto.client("s3").put_object(Bucket="code", Key="job/sourcedir.tar.gz", Body=archive.getvalue())
    empty = tmp_path / "empty-code"
    empty.mkdir()
    host = tmp_path / "opt-ml"
    hyperparameters = {
        "epochs": "1",
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"s3://code/job/sourcedir.tar.gz"',
    }
    mounts = sagemaker_host(host, project["path"] / "data", hyperparameters, code=empty)
    aws = {
        "S3_ENDPOINT_URL": moto.url,
        "AWS_REGION": moto.region,
        "AWS_ACCESS_KEY_ID": moto.access_key,
        "AWS_SECRET_ACCESS_KEY": moto.secret_key,
    }
    options = ["--network", "host", "--add-host", "algo-1:127.0.0.1"]
    options += [arg for key, value in aws.items() for arg in ("-e", f"{key}={value}")]
    status, log = docker_train(image, mounts, *options)
    assert status == 0, log[-3000:]
    assert "code from S3" in log
    assert (host / "model" / "1" / "saved_model.pb").is_file()


def test_the_sdk_v2_estimator_trains_the_image_in_local_mode(project, image, tmp_path):
    venv = tmp_path / "sdk-v2"
    uv = Path(sys.prefix, "bin", "uv")
    run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)])
    run([str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), SDK_V2])
    script = tmp_path / "v2.py"
    script.write_text(SDK_V2_LOCAL_RUN)
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **project["env"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(project["path"] / "sagemaker.yaml"),  # no telemetry
    }
    run(
        [str(venv / "bin" / "python"), str(script), image, str(project["path"] / "data"), str(out)],
        env=env,
        timeout=900,
    )
    with tarfile.open(out / "model.tar.gz") as model:
        assert "1/saved_model.pb" in model.getnames()
