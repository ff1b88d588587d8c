"""Shared fixtures: a real moto server over HTTP, and real cookiecutter bakes in subprocesses.

Bakes run `cookiecutter` as a user would, in a separate process with an environment the test
controls, so the tests see exactly what reaches the terminal and no developer credentials,
profile or ~/.cookiecutterrc leak in. For the whole session, this process's own environment
has no AWS setup either: what inherits it (in-process bakes, whose hooks are child processes,
and every `{**os.environ}` subprocess) cannot reach the developer's AWS.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from helpers import MOTO_ACCOUNT_ID, TEMPLATE_DIR, VENV_BIN, environment_without_aws, free_port
from status_overlay import StatusOverlay

MOTO_ACCOUNT_HEADER = "x-moto-account-id"
# moto's account for access keys it does not know (the moto_accounts server's "testing")
MOTO_DEFAULT_ACCOUNT_ID = "123456789012"


@pytest.fixture(scope="session", autouse=True)
def no_aws_setup_of_the_developer(tmp_path_factory):
    """os.environ as environment_without_aws() makes it, for the whole session: no AWS_*
    variable of the developer's shell, empty AWS config and credentials files, no instance
    metadata. A test that wants AWS passes its own environment (moto.env())."""
    clean = environment_without_aws(tmp_path_factory.mktemp("no-aws"))
    with pytest.MonkeyPatch.context() as patch:
        for key in set(os.environ) - set(clean):
            patch.delenv(key)
        for key, value in clean.items():
            patch.setenv(key, value)
        for key in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):  # under `make test`:
            patch.delenv(key, raising=False)  # a test's make is a user's, not a sub-make
        # The tools of this checkout, in every process a test starts (a baked project's smt):
        # the virtualenv's editable install may point at another work tree of the repository.
        patch.setenv("PYTHONPATH", str(TEMPLATE_DIR / "tools"))
        yield


@dataclass
class MotoServer:
    url: str
    account_id: str
    aws_files: Path
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"

    def env(self, **extra: str) -> dict[str, str]:
        """A full process environment that points boto3 and the aws CLI at this server."""
        aws = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }
        return environment_without_aws(self.aws_files, **{**aws, **extra})

    def client(self, service: str, region: str | None = None, account: str | None = None):
        """A boto3 client of this server; account: act as that account (a header moto reads
        where it does not fix one account for every request)."""
        client = boto3.client(
            service,
            region_name=region or self.region,
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )
        if account:
            client.meta.events.register(
                "before-sign",
                lambda request, **_: request.headers.add_header(MOTO_ACCOUNT_HEADER, account),
            )
        return client

    def _post(self, path: str, data: bytes | None = None) -> None:
        request = urllib.request.Request(
            self.url + path, data=data, method="POST", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(request, timeout=5)

    @contextlib.contextmanager
    def iam_enforced(self):
        """Within: moto allows a request only if the caller's IAM policies do, as AWS does
        (by default it allows everything)."""
        self._post("/moto-api/reset-auth", b"0")  # after 0 requests without checks
        try:
            yield
        finally:
            self._post("/moto-api/reset-auth", b"inf")

    def start_recording(self) -> None:
        self._post("/moto-api/recorder/reset-recording")
        self._post("/moto-api/recorder/start-recording")

    def reset(self) -> None:
        """Forget every resource and every recorded request."""
        self._post("/moto-api/reset")
        self.start_recording()

    def recorded_requests(self) -> list[dict]:
        """The AWS requests received since the last reset, one dict per request."""
        with urllib.request.urlopen(
            self.url + "/moto-api/recorder/download-recording", timeout=5
        ) as response:
            text = response.read().decode()
        # moto's threads append to the recording at once: two requests may share a line
        requests, decoder, space = [], json.JSONDecoder(), re.compile(r"\s*")
        at = space.match(text).end()
        while at < len(text):
            request, at = decoder.raw_decode(text, at)
            requests.append(request)
            at = space.match(text, at).end()
        return requests


@contextlib.contextmanager
def running_moto_server(workdir: Path, account_id: str, **settings: str):
    """A real moto server process on 127.0.0.1 that records the requests it receives;
    settings are moto's environment variables. account_id: the account of its default keys."""
    port = free_port()
    log = (workdir / "moto_server.log").open("w")
    process = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env={
            **os.environ,
            "MOTO_ENABLE_RECORDING": "True",
            "MOTO_RECORDER_FILEPATH": str(workdir / "recording.jsonl"),
            **settings,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    server = MotoServer(f"http://127.0.0.1:{port}", account_id, workdir / "aws")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                server.start_recording()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        f"moto_server did not start: {(workdir / 'moto_server.log').read_text()}"
                    )
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """A real moto server process on 127.0.0.1, for the whole session: one account."""
    with running_moto_server(
        tmp_path_factory.mktemp("moto"),
        MOTO_ACCOUNT_ID,
        MOTO_ACCOUNT_ID=MOTO_ACCOUNT_ID,
        # AWS's managed policies (AmazonSageMakerFullAccess...), as a real account has
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",
    ) as server:
        yield server


@pytest.fixture(scope="session")
def moto_accounts(tmp_path_factory):
    """A second moto server that keeps accounts apart as AWS does: a request is in its
    access key's account (MotoServer.client(account=...) names another), and S3 refuses an
    account another's bucket."""
    with running_moto_server(
        tmp_path_factory.mktemp("moto-accounts"),
        MOTO_DEFAULT_ACCOUNT_ID,
        MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS="false",
    ) as server:
        yield server


@pytest.fixture
def moto(moto_server):
    """The session's moto server, emptied for this test."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def overlay(moto):
    """A StatusOverlay in front of this test's moto server: point AWS_ENDPOINT_URL at its url."""
    server = StatusOverlay(moto)
    # shutdown() waits for serve_forever to look again: every 0.05 s, not its 0.5 s default
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dataclass
class Bake:
    returncode: int
    stdout: str
    stderr: str
    output_dir: Path
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def leftovers(self) -> list[str]:
        """What the bake left in the output directory (nothing, after a failure)."""
        return sorted(path.name for path in self.output_dir.iterdir())

    @property
    def errors(self) -> list[str]:
        """Our ERROR lines (stderr; cookiecutter logs its own "ERROR: Stopping..." to stdout)."""
        return [line for line in self.stderr.splitlines() if line.startswith("ERROR: ")]

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("WARNING: ")]


@pytest.fixture
def bake(tmp_path):
    """Run `cookiecutter --no-input TEMPLATE key=value...` in a subprocess.

    `env` defaults to an environment without any AWS setup; HOME is a fresh directory so no
    ~/.cookiecutterrc, replay or clone of the developer's is used. Each call gets its own
    output directory, made beforehand as a user's would be. With `typed`, cookiecutter
    prompts and reads that text as what the user typed.
    """
    home = tmp_path / "home"
    home.mkdir()
    count = 0

    def run(
        answers: dict[str, str] | None = None,
        *,
        env: dict[str, str] | None = None,
        template: str | Path = TEMPLATE_DIR,
        cwd: Path | None = None,
        replay_file: Path | None = None,
        typed: str | None = None,
        merge_streams: bool = False,
        timeout: float = 120,
    ) -> Bake:
        nonlocal count
        count += 1
        output_dir = tmp_path / f"out{count}"
        output_dir.mkdir()
        command = [sys.executable, "-m", "cookiecutter", "-o", str(output_dir), str(template)]
        if replay_file:
            command += ["--replay-file", str(replay_file)]
        elif typed is not None:  # answer the prompts as a user would type, one per line
            command += [f"{key}={value}" for key, value in (answers or {}).items()]
        else:
            command += ["--no-input", *(f"{key}={value}" for key, value in (answers or {}).items())]
        run_env = {**(env or environment_without_aws(tmp_path / "aws")), "HOME": str(home)}
        run_env["PYTHONDONTWRITEBYTECODE"] = "1"
        started = time.monotonic()
        done = subprocess.run(
            command,
            env=run_env,
            cwd=cwd or tmp_path,
            input=typed,
            stdin=None if typed is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_streams else subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
        return Bake(
            done.returncode,
            done.stdout,
            done.stderr or "",
            output_dir,
            time.monotonic() - started,
        )

    return run
