"""Running what a user runs, for the end-to-end tests: commands, make targets, timings."""

import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

TIMINGS: dict[str, float] = {}


class Stopwatch:
    """Times a stage of the loop for the summary at the end of the run."""

    def __init__(self, stage: str):
        self.stage = stage

    def __enter__(self):
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.started
        TIMINGS[self.stage] = self.seconds


def run(
    command: list[str],
    *,
    cwd: Path | None = None,
    env: dict | None = None,
    timeout: float = 1800,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run a command as a user would, output captured (stdout and stderr together)."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-4000:]}")
    return done


def make_argv(*targets, user=None, **settings) -> list[str]:
    """make TARGETS KEY=value..., as `user` (a ProjectUser) if given. With VENV= (this test
    run's virtualenv, which has the requirements), -o keeps make from installing the
    project's requirements, and its pin of the tools, into it."""
    assignments = [f"{key}={value}" for key, value in settings.items()]
    if "VENV" in settings:
        marks = [f"{settings['VENV']}/.installed-{name}" for name in ("tools", "dev")]
        assignments = [*(word for mark in marks for word in ("-o", mark)), *assignments]
    return [*(user.prefix if user else []), "make", "--no-print-directory", *targets, *assignments]


def make(project, *targets, env, check=True, timeout=1800, user=None, **settings):
    """make_argv's command, in the project."""
    command = make_argv(*targets, user=user, **settings)
    return run(command, cwd=project, env=env, check=check, timeout=timeout)


@dataclass
class ProjectUser:
    """Someone who runs a project as most people do: not root, in the docker group."""

    uid: int
    gid: int
    home: Path  # their HOME; the projects they own are copied under it
    prefix: list[str]  # put before a command, runs it as them

    def copy(self, source: Path, ignore=None) -> Path:
        """A copy of the folder, every file of it theirs, in a new folder of their home."""
        copy = Path(tempfile.mkdtemp(dir=self.home)) / source.name
        shutil.copytree(source, copy, symlinks=True, ignore=ignore)
        if self.uid != os.getuid():
            run(["chown", "-R", f"{self.uid}:{self.gid}", str(copy.parent)])
        return copy


@contextlib.contextmanager
def started(project, target: str, log: Path, ready: str, *, env, boot_seconds=300, **settings):
    """`make TARGET` left running as in a terminal, its output in `log`: yields the process
    once `ready` is in its output; then Ctrl-C (SIGINT to its process group), as a user
    stops it, and waits for it to end."""
    with log.open("w") as out:
        process = subprocess.Popen(make_argv(target, **settings), cwd=project, env=env,
                                   stdout=out, stderr=out, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + boot_seconds
        while ready not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make {target} did not say {ready!r}:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in its terminal
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            pytest.fail(f"make {target} did not stop on Ctrl-C:\n{log.read_text()[-3000:]}")


def image_layers(image: str) -> list[str]:
    done = run(["docker", "image", "inspect", "-f", "{{json .RootFS.Layers}}", image])
    return json.loads(done.stdout)


def metric_definitions(project) -> list[dict]:
    """The metric definitions the baked project gives SageMaker, as its launcher loads them."""
    code = "import json; from smt import project; "
    code += "print(json.dumps(project.runtime().metric_definitions()))"
    done = run([sys.executable, "-c", code], cwd=project)
    return json.loads(done.stdout)


def image_of(project, env, settings) -> str:
    """The image name the project's Makefile would build now."""
    return make(project, "-s", "print-IMAGE", env=env, check=False, **settings).stdout.strip()


def debian_package(command: str, package: str) -> str:
    """The path of `command`, from Debian's `package`: installed here if missing (as root;
    .ci/run installs it first)."""
    if shutil.which(command) is None and os.geteuid() == 0:
        install = "apt-get update -qq && apt-get install -y -qq --no-install-recommends"
        run(
            ["bash", "-c", f"{install} {package}"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            timeout=600,
        )
    if (path := shutil.which(command)) is None:
        pytest.fail(f"{command} is missing: sudo apt-get install {package}")
    return path


# What moto 5.2.5's ECR GetAuthorizationToken hands out: base64 of "AWS:<password>", the
# user and password `aws ecr get-login-password | docker login --username AWS` logs in with.
REGISTRY_USER = "AWS"


def ecr_password(account_id: str) -> str:
    return f"{account_id}-auth-token"


@contextlib.contextmanager
def serve_registry(workdir: Path, password: str):
    """Debian's docker-registry on 127.0.0.1 (Docker trusts plain HTTP on loopback), with
    htpasswd authentication for the user AWS, as ECR has: only that password gets in."""
    from helpers import free_port

    debian_package("docker-registry", "docker-registry")
    address = f"127.0.0.1:{free_port()}"
    htpasswd = workdir / "htpasswd"  # bcrypt, the only kind the registry reads; cost 4: fast
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"{REGISTRY_USER}:{hashed}\n")
    config = workdir / "config.yml"
    config.write_text(
        json.dumps(
            {  # JSON is YAML
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {
                    "filesystem": {"rootdirectory": str(workdir / "storage")},
                    "delete": {"enabled": True},
                },
                "http": {"addr": address},
                "auth": {"htpasswd": {"realm": "e2e-registry", "path": str(htpasswd)}},
            }
        )
    )
    log = (workdir / "registry.log").open("w")
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=2)
                pytest.fail(f"the registry on {address} lets anyone in: no authentication")
            except urllib.error.HTTPError as refused:  # up, and asking who it is
                assert refused.code == 401, refused
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"registry did not start: {(workdir / 'registry.log').read_text()}")
                time.sleep(0.2)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def registry_get(address: str, path: str, accept: str | None = None):
    """GET http://ADDRESS/v2/PATH as this account's ECR login (the test registry has auth)."""
    from helpers import MOTO_ACCOUNT_ID

    login = f"{REGISTRY_USER}:{ecr_password(MOTO_ACCOUNT_ID)}"
    headers = {"Authorization": "Basic " + base64.b64encode(login.encode()).decode()}
    if accept:
        headers["Accept"] = accept
    request = urllib.request.Request(f"http://{address}/v2/{path}", headers=headers)
    return urllib.request.urlopen(request, timeout=10)


def registry_tags(address: str, repository: str) -> list[str]:
    with registry_get(address, f"{repository}/tags/list") as answer:
        return json.loads(answer.read())["tags"] or []


# What a registry may answer for a tag; SageMaker runs only the first two (single images).
SINGLE_IMAGE = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
INDEX = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


def pushed_manifest_type(address: str, repository: str, tag: str) -> str:
    """The media type the registry serves for the tag when a client accepts every kind, an
    index or list included: what SageMaker would pull."""
    accept = ", ".join(INDEX + SINGLE_IMAGE)
    with registry_get(address, f"{repository}/manifests/{tag}", accept) as answer:
        return json.loads(answer.read()).get("mediaType") or answer.headers["Content-Type"]


def score_model(run_folder: Path, data_dir: Path, scratch: Path) -> tuple[list[str], float]:
    """The files in a run's model.tar.gz, and the model's accuracy on the test channel."""
    import numpy as np
    import tensorflow as tf

    with tarfile.open(run_folder / "model.tar.gz") as archive:
        names = [name.removeprefix("./") for name in archive.getnames()]
        archive.extractall(scratch, filter="data")
    model = tf.saved_model.load(str(scratch / "1"))
    files = [np.load(file) for file in sorted((data_dir / "test").glob("*.npz"))]
    x, y = (np.concatenate([file[name] for file in files]) for name in ("x", "y"))
    outputs = model.signatures["serving_default"](tf.constant(x, "float32"))
    scores = next(iter(outputs.values())).numpy()
    return names, float((scores.argmax(axis=1) == y).mean())


def bake(out: Path, env: dict, **answers: str) -> None:
    """cookiecutter --no-input TEMPLATE key=value..., as a user runs it."""
    from helpers import TEMPLATE_DIR

    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(out)]
    run(
        [*command, str(TEMPLATE_DIR), *(f"{k}={v}" for k, v in answers.items())],
        env=env,
        timeout=120,
    )


def sagemaker_host(
    root: Path,
    data: Path,
    hyperparameters: dict,
    code: Path | None = None,
    host: str = "algo-1",
    hosts: tuple[str, ...] = ("algo-1",),
    distribution: str = "FullyReplicated",
):
    """/opt/ml as SageMaker lays it out for one host (config, channels, model, output) under
    root, and the `docker run` mounts of it: its folders, not /opt/ml itself, which would
    hide the image's /opt/ml/code (unless `code` is given to mount there instead)."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": host, "hosts": list(hosts)})
    )
    channels = sorted(p.name for p in data.iterdir() if p.is_dir())
    config_of = {"TrainingInputMode": "File", "S3DistributionType": distribution}
    (config / "inputdataconfig.json").write_text(json.dumps(dict.fromkeys(channels, config_of)))
    for channel in channels:
        shutil.copytree(data / channel, root / "input" / "data" / channel)
    for folder in ("model", "output"):
        (root / folder).mkdir()
    folders = {"input": root / "input", "model": root / "model", "output": root / "output"}
    if code is not None:
        folders["code"] = code
    return [arg for name, path in folders.items() for arg in ("-v", f"{path}:/opt/ml/{name}")]


# ---- serving: `docker run IMAGE serve`, and HTTP clients of it (tests and bench) ----


def http_call(port: int, method: str, path: str, body=None, headers=None, timeout: float = 120):
    """(status, Content-Type, body) of one request to 127.0.0.1:port, on its own connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body, headers or {})
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type"), answer.read()
    finally:
        connection.close()


@dataclass
class Server:
    name: str  # the container's
    port: int  # on 127.0.0.1

    def ping(self) -> tuple[int, bytes]:
        status, _, body = http_call(self.port, "GET", "/ping", timeout=10)
        return status, body

    def invoke(self, body: bytes, content_type: str, accept: str | None = None):
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        return http_call(self.port, "POST", "/invocations", body, headers)

    def logs(self) -> str:
        return run(["docker", "logs", self.name], check=False).stdout


@contextlib.contextmanager
def serving(image: str, model: Path, *options: str, inside: int = 8080, boot_seconds: float = 240):
    """`docker run IMAGE serve` as SageMaker starts it, `model` at /opt/ml/model, its port
    (`inside`) published on 127.0.0.1; yields once /ping answers (whatever it says)."""
    from helpers import free_port

    server = Server(f"serve-e2e-{free_port()}", free_port())
    publish, mount = f"127.0.0.1:{server.port}:{inside}", f"{model}:/opt/ml/model:ro"
    run(["docker", "run", "-d", "--name", server.name, "-p", publish, "-v", mount, *options,
         image, "serve"])  # fmt: skip
    try:
        deadline = time.monotonic() + boot_seconds
        while True:
            try:
                server.ping()
                break
            except OSError:
                if (
                    time.monotonic() > deadline
                    or "true"
                    not in run(
                        ["docker", "inspect", "-f", "{{.State.Running}}", server.name], check=False
                    ).stdout
                ):
                    pytest.fail(f"serve did not answer /ping:\n{server.logs()[-3000:]}")
                time.sleep(0.5)
        yield server
    finally:
        run(["docker", "rm", "-f", server.name], check=False)


def load(port: int, body: bytes, headers: dict, clients: int, requests: int) -> dict:
    """`requests` POSTs to /invocations from `clients` threads, each over its own kept-alive
    connection: their latencies (s), the failures (an exception or a status other than 200,
    with what it was) and the wall time."""
    from concurrent.futures import ThreadPoolExecutor

    def client(count: int) -> tuple[list[float], list[str]]:
        latencies, failures = [], []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(count):
            started = time.perf_counter()
            try:
                connection.request("POST", "/invocations", body, headers)
                answer = connection.getresponse()
                answer.read()
                if answer.status != 200:
                    failures.append(f"status {answer.status}")
            except (OSError, http.client.HTTPException) as error:  # a dropped connection
                failures.append(repr(error))
                connection.close()
            latencies.append(time.perf_counter() - started)
        connection.close()
        return latencies, failures

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        shares = [requests // clients + (i < requests % clients) for i in range(clients)]
        results = list(pool.map(client, shares))
    seconds = time.perf_counter() - started
    latencies = [s for done, _ in results for s in done]
    return {
        "latencies": latencies,
        "failures": [x for _, failed in results for x in failed],
        "seconds": seconds,
    }
