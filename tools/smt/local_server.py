"""make serve-local [MODEL=...]: `docker run IMAGE serve` on localhost, as SageMaker runs it,
with the newest local run's model or MODEL's at /opt/ml/model; Ctrl-C stops and removes it."""

import signal
import subprocess
import tarfile
import tempfile
from pathlib import Path

from smt import image, project, runs
from smt.errors import BadSetting, Failure

BOOT_SECONDS = 180  # each worker imports TensorFlow and loads the model
NAME_IT = "name a model.tar.gz, a folder holding 1/, or a run in outputs/: MODEL=<it>"


def model_mount(model: str | None, outputs: Path) -> tuple[Path, str]:
    """(a folder here, where it goes in the container): a local run's model.tar.gz is
    extracted beside it once, into <run>/model/, which holds 1/ as SageMaker extracts it."""
    path = Path(model) if model else outputs / "latest"
    if model and not path.exists():
        path = outputs / model  # a local run's name
    if not path.exists():
        if model:
            raise BadSetting(f"MODEL: {model} does not exist; {NAME_IT}")
        raise BadSetting(f"MODEL: no local model yet: run make train-local, or {NAME_IT}")
    if path.is_dir() and (path / "model.tar.gz").is_file():
        path = path / "model.tar.gz"
    if path.is_file() and path.name.endswith(".tar.gz"):
        folder = path.parent / path.name.removesuffix(".tar.gz")
        if not folder.is_dir():
            with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
                try:
                    with tarfile.open(path) as archive:
                        archive.extractall(scratch, filter="data")
                except tarfile.TarError as error:
                    raise BadSetting(f"MODEL: {path} is not a model.tar.gz ({error})") from None
                Path(scratch).rename(folder)
                Path(scratch).mkdir()  # for the clean-up
        path = folder
    if (path / "1" / "saved_model.pb").is_file():
        return path.resolve(), "/opt/ml/model"
    if (path / "saved_model.pb").is_file():
        return path.resolve(), "/opt/ml/model/1"
    failure = path / "failure" if path.is_dir() else path.parent / "failure"
    why = f" (the run failed: {failure.read_text().strip()})" if failure.is_file() else ""
    raise BadSetting(f"MODEL: {path} holds no SavedModel{why}; {NAME_IT}")


def quietly(*args: str, timeout: float) -> str:
    """A docker command whose failure is an answer (the container has gone), not news."""
    return project.run("docker", *args, timeout=timeout, late=f"docker {args[0]}").stdout.strip()


def stopped(container: str) -> str | None:
    """Why the container cannot answer any more, while it is not listening yet."""
    state = quietly("inspect", "--format", "{{.State.Running}}", container, timeout=30)
    return None if state == "true" else "the container stopped (its log is above)"


def main(settings) -> int:
    outputs = settings.project_dir / "outputs"
    if settings.run and settings.model:
        raise BadSetting("MODEL, RUN: name one model to serve, not both")
    chosen = runs.local_model(settings, outputs) if settings.run else settings.model
    folder, target = model_mount(chosen, outputs)
    image.build(settings)
    port = settings.serve_port
    name, url = f"{settings.base_job_name}-serve-{port}", f"http://localhost:{port}"
    where = [f"--publish=127.0.0.1:{port}:8080", f"--volume={folder}:{target}:ro"]
    run = ["run", "-d", "--name", name, *where, settings.image, "serve"]
    image.docker(*run, timeout=60, doing="docker run", capture=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # KeyboardInterrupt: as Ctrl-C
    signal.signal(signal.SIGHUP, signal.default_int_handler)
    logs = subprocess.Popen(["docker", "logs", "-f", name])
    try:
        print(f"serving {folder} at {url} (container {name}); loading ...", flush=True)
        if problem := project.wait_until_ready(f"{url}/ping", lambda: stopped(name), BOOT_SECONDS):
            raise Failure(f"the server does not serve: {problem}")
        print(f"ready: {url}/invocations. Try it: make predict. Ctrl-C stops it.", flush=True)
        logs.wait()  # until the container ends
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        print(f"\nstopping {name} ...", flush=True)
        quietly("stop", "-t", "30", name, timeout=90)  # SIGTERM: requests in flight finish
        # not run with --rm: the daemon removes such a container after stop returns, so it
        # could still be listed once we say it is gone; rm returns once it is
        quietly("rm", "-f", name, timeout=60)
        logs.terminate()
        print(f"stopped; container {name} removed", flush=True)
