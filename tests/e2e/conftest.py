"""Real engines for the end-to-end tests: a Docker engine, a base image, a registry on
localhost, and (from ../conftest.py) a moto server. Each starts once per session, and
what a fixture started, it stops."""

import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
from engines import (
    TIMINGS,
    ProjectUser,
    Stopwatch,
    bake,
    ecr_password,
    image_of,
    make,
    run,
    serve_registry,
)
from helpers import MOTO_ACCOUNT_ID, TEMPLATE_DIR

INFRA = TEMPLATE_DIR / "tests" / "infra"


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("end-to-end stage timings")
        for stage, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{stage:<40} {seconds:7.1f} s")


@pytest.fixture(scope="session")
def docker_engine():
    """A Docker engine that answers; started (and later stopped) here if none did."""
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0
    ):
        run(["bash", str(INFRA / "docker-engine.sh"), "start"], timeout=600)
        yield
        run(["bash", str(INFRA / "docker-engine.sh"), "stop"], timeout=120, check=False)
    else:
        yield


@pytest.fixture(scope="session")
def base_image(docker_engine):
    """$BASE_IMAGE, the template's default if present, else a debootstrapped Debian."""
    with Stopwatch("base image"):
        done = subprocess.run(
            ["bash", str(INFRA / "base-image.sh")], capture_output=True, text=True, timeout=1200
        )
    if done.returncode != 0:
        pytest.fail(f"no base image: {done.stderr[-2000:]}")
    return done.stdout.strip()


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """The registry the loop pushes to: it takes the password this account's ECR token
    (moto's) carries, so only `make login` gets a push in."""
    with serve_registry(tmp_path_factory.mktemp("registry"), ecr_password(MOTO_ACCOUNT_ID)) as a:
        yield a


@pytest.fixture
def another_accounts_registry(tmp_path):
    """A registry of another AWS account: this account's ECR token does not get in."""
    with serve_registry(tmp_path, ecr_password("123456789012")) as address:
        yield address


NON_ROOT_USER = "smtest"


def quote(path: Path) -> str:
    return shlex.quote(str(path))


@pytest.fixture(scope="session")
def non_root_user(tmp_path_factory, shared_venv):
    """Who runs a project: not root, in the docker group. When the tests run as such a
    user, that user. As root (CI is), NON_ROOT_USER, created here once and kept, whose
    commands run in a private mount namespace where each folder closed to others on the way
    to this virtualenv and its Python (root's home is) shows only those two."""
    if os.geteuid() != 0:
        yield ProjectUser(os.getuid(), os.getgid(), tmp_path_factory.mktemp("home"), [])
        return
    try:
        pwd.getpwnam(NON_ROOT_USER)
    except KeyError:  # another session may create it at the same time: check again after
        run(["useradd", "--create-home", "--groups", "docker", NON_ROOT_USER], check=False)
    run(["usermod", "--append", "--groups", "docker", NON_ROOT_USER])
    user = pwd.getpwnam(NON_ROOT_USER)
    needed = {Path(p) for p in (shared_venv, sys.base_prefix)}
    needed |= {p.resolve() for p in needed}
    closed: dict[Path, list[Path]] = {}  # the first folder others may not enter -> below it
    for path in sorted(needed):
        for folder in [*reversed(path.parents), path]:
            if not folder.stat().st_mode & stat.S_IXOTH:
                closed.setdefault(folder, []).append(path)
                break
    stash = tmp_path_factory.mktemp("closed")
    script = ["set -eu"]
    for number, (folder, paths) in enumerate(closed.items()):
        (stash / str(number)).mkdir()
        script += [
            f"mount --bind {quote(folder)} {quote(stash / str(number))}",
            f"mount -t tmpfs -o mode=755 tmpfs {quote(folder)}",
        ]
        for path in paths:
            inside = stash / str(number) / path.relative_to(folder)
            script += [f"mkdir -p {quote(path)}", f"mount --bind {quote(inside)} {quote(path)}"]
    script.append(f'exec setpriv --reuid={user.pw_uid} --regid={user.pw_gid} --init-groups -- "$@"')
    prefix = ["unshare", "--mount", "--propagation", "private", "bash", "-c", "\n".join(script)]
    home = Path(tempfile.mkdtemp(prefix="sm-template-e2e-", dir=user.pw_dir))
    os.chown(home, user.pw_uid, user.pw_gid)
    yield ProjectUser(user.pw_uid, user.pw_gid, home, [*prefix, NON_ROOT_USER])
    shutil.rmtree(home)


@pytest.fixture(scope="session")
def shared_venv() -> str:
    """The generated projects use this test run's virtualenv (it has their requirements),
    so no test downloads the SDK and TensorFlow again."""
    return sys.prefix


@pytest.fixture(scope="session")
def project(tmp_path_factory, base_image, shared_venv):
    """A baked project (AWS checks skipped), its digits data and its image, shared by the
    modules that run its image (test_scale_out, test_entry_point)."""
    out = tmp_path_factory.mktemp("scale")
    env = {**os.environ, "PATH": f"{shared_venv}/bin:{os.environ['PATH']}"}
    bake(out, env, project_name="Scale Out", aws_checks="skip")
    path = out / "scale_out"
    settings = {"VENV": shared_venv, "BASE_IMAGE": base_image}
    with Stopwatch("first make build of the run (cold without a layer cache)"):
        make(path, "data", "build", env=env, timeout=2400, DATASET="digits", **settings)
    return {"path": path, "env": env, "settings": settings}


@pytest.fixture(scope="session")
def trained(project):
    """A local run of the shared project: its model extracted as SageMaker extracts it, the
    test accuracy train.py printed, the test split as stored, and the image; its MLflow run is
    test_tracking_on_real_engines'. That file sorts after test_scale_out: test_serving serves
    the newest run, which must be this one, not a scale-out run made after it."""
    with Stopwatch("train-local for serving (3 epochs)"):
        make(project["path"], "train-local", env=project["env"], HPARAMS="epochs=3",
             **project["settings"])  # fmt: skip
    folder = (project["path"] / "outputs" / "latest").resolve()
    log = (folder / "train.log").read_text()
    accuracy = float(re.findall(r"METRIC test:accuracy=([\d.]+)", log)[-1])
    model = folder / "extracted"
    with tarfile.open(folder / "model.tar.gz") as archive:
        archive.extractall(model, filter="data")
    # every file of the channel, as stored (test_scale_out leaves it in shards)
    shards = [np.load(f) for f in sorted((project["path"] / "data" / "test").glob("*.npz"))]
    x = np.concatenate([s["x"] for s in shards]).astype("float32")  # 0..255: the model scales
    y = np.concatenate([s["y"] for s in shards])
    image = image_of(project["path"], project["env"], project["settings"])
    return {
        "model": model,
        "accuracy": accuracy,
        "x": x,
        "y": y,
        "image": image,
        "folder": folder,
        "hyperparameters": {"epochs": "3"},
    }
