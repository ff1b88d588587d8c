"""Plumbing, make serve-local [MODEL=...]: the image's `serve` in Docker on localhost, as
SageMaker runs it (`docker run IMAGE serve`, the model at /opt/ml/model), with the newest
local run's model or MODEL's; Ctrl-C stops the server (requests in flight finish) and
removes the container."""

import json
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from smt.settings import SettingsParser, whole_number

BOOT_SECONDS = 180  # each worker imports TensorFlow and loads the model
MODEL_HELP = "MODEL=<model.tar.gz, a folder holding 1/, or a run in outputs/>"


class NoModel(Exception):
    """What MODEL names is no model; the message says why, in one line."""


def model_mount(model: str | None, outputs: Path) -> tuple[Path, str]:
    """(a folder here, where it goes in the container): a local run's model.tar.gz is
    extracted beside it once, into <run>/model/, which holds 1/ as SageMaker extracts it."""
    path = Path(model) if model else outputs / "latest"
    if model and not path.exists() and (outputs / model).exists():
        path = outputs / model  # a local run's name
    if not path.exists():
        if model:
            raise NoModel(f"MODEL={model} does not exist; name {MODEL_HELP}")
        raise NoModel(f"no local model yet: run make train-local, or name {MODEL_HELP}")
    if path.is_dir() and (path / "model.tar.gz").is_file():
        path = path / "model.tar.gz"
    if path.is_file() and path.name.endswith(".tar.gz"):
        folder = path.parent / path.name.removesuffix(".tar.gz")
        if not folder.is_dir():
            with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
                with tarfile.open(path) as archive:
                    archive.extractall(scratch, filter="data")
                Path(scratch).rename(folder)
                Path(scratch).mkdir()  # for the clean-up
        path = folder
    if (path / "1" / "saved_model.pb").is_file():
        return path.resolve(), "/opt/ml/model"
    if (path / "saved_model.pb").is_file():
        return path.resolve(), "/opt/ml/model/1"
    failure = path / "failure" if path.is_dir() else path.parent / "failure"
    why = f" (the run failed: {failure.read_text().strip()})" if failure.is_file() else ""
    raise NoModel(f"{path} holds no SavedModel{why}; name {MODEL_HELP}")


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def wait_until_ready(url: str, container: str) -> str | None:
    """None once /ping answers 200; else why the server will not serve."""
    deadline = time.monotonic() + BOOT_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=5):
                return None
        except urllib.error.HTTPError as refused:  # up, and saying why it cannot serve
            return json.loads(refused.read() or b"{}").get("error") or f"/ping {refused.code}"
        except OSError:  # not listening yet
            state = json.loads(docker("inspect", container).stdout or "[{}]")[0].get("State", {})
            if not state.get("Running"):
                return "the container stopped (its log is above)"
            time.sleep(0.5)
    return f"/ping did not answer within {BOOT_SECONDS} s"


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # the same clean-up as Ctrl-C


def main(argv=None) -> int:
    parser = SettingsParser(__doc__)
    parser.setting("--image", "the image to serve with")
    parser.setting("--model", "a model.tar.gz, a folder holding 1/, or a run in outputs/")
    parser.setting("--serve-port", "the port on localhost", whole_number, "8080")
    parser.setting("--base-job-name", "the container's name starts with this", default="serve")
    parser.add_argument("--outputs-dir", type=Path, default=Path(__file__).parents[1] / "outputs")
    args = parser.parse_args(argv)
    try:
        folder, target = model_mount(args.model, args.outputs_dir)
    except (NoModel, OSError, tarfile.TarError) as error:
        parser.exit(2, f"error: {error}\n")
    port = args.serve_port
    name, url = f"{args.base_job_name}-serve-{port}", f"http://localhost:{port}"
    publish, mount = f"127.0.0.1:{port}:8080", f"{folder}:{target}:ro"
    started = docker(
        "run", "-d", "--rm", "--name", name, "-p", publish, "-v", mount, args.image, "serve"
    )
    if started.returncode != 0:
        why = " ".join(started.stderr.split()).removeprefix("docker: ")[:300]
        parser.exit(1, f"error: docker run failed: {why}\n")
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    signal.signal(signal.SIGHUP, stop_on_sigterm)
    logs = subprocess.Popen(["docker", "logs", "-f", name])
    try:
        print(f"serving {folder} at {url} (container {name}); loading ...", flush=True)
        if problem := wait_until_ready(url, name):
            print(f"error: the server does not serve: {problem}", file=sys.stderr)
            return 1
        print(f"ready: {url}/invocations. Try it: make predict. Ctrl-C stops it.", flush=True)
        logs.wait()  # until the container ends
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        print(f"\nstopping {name} ...", flush=True)
        docker("stop", "-t", "30", name, timeout=90)  # SIGTERM: requests in flight finish
        docker("rm", "-f", name)  # --rm has removed it, unless the daemon was slow to
        logs.terminate()
        print(f"stopped; container {name} removed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
