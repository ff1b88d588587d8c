"""Every run an MLflow run, on real engines: the shared project's train-local run read back
from its embedded store (outputs/mlflow/mlflow.db, nothing set), and one short run sent to a
tracking server started here (MLFLOW_TRACKING_URI); make ui seen in a headless Chromium;
make runs; make serve-local RUN=. What a run must hold is worked out here from what the run
left (train.log, the data files, the image), never by smt's own parsers."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from engines import Stopwatch, debian_package, http_call, image_of, make, run, started
from helpers import free_port

# METRIC name=value [epoch=N], at a line's end (local mode puts the container's name first)
METRIC = re.compile(r"METRIC ([\w:]+)=(\S+?)(?: epoch=(\d+))?\s*$")
JSON = "application/json"
SERVER_BOOT_SECONDS = 180  # mlflow server takes 15-20 s on an idle 2-core machine


def metric_lines(log: Path) -> dict[str, list[tuple[int, float]]]:
    """Each metric's (step, value), in the order train.log prints them; a line without an
    epoch (test:*) is at the last epoch printed before it."""
    series, epoch = {}, 0
    for line in log.read_text(errors="replace").splitlines():
        if found := METRIC.search(line):
            name, value, at = found.groups()
            epoch = int(at) if at else epoch
            series.setdefault(name, []).append((epoch, float(value)))
    return series


def channel_hash(channel: Path) -> str:
    """As tracking.data_hashes documents it: sha256 over each file's path in the channel and
    the sha256 of its bytes, in name order; its first 16 hex digits."""
    digest = hashlib.sha256()
    for file in sorted(f for f in channel.rglob("*") if f.is_file()):
        name = file.relative_to(channel).as_posix()
        digest.update(f"{name}\0{hashlib.sha256(file.read_bytes()).hexdigest()}\0".encode())
    return digest.hexdigest()[:16]


def declared_hyperparameters(project: Path) -> dict[str, str]:
    """code/job_contract.py's defaults, as the baked project declares them."""
    namespace: dict = {}
    exec((project / "code" / "job_contract.py").read_text(), namespace)
    return {name: str(spec[1]) for name, spec in namespace["HYPERPARAMETERS"].items()}


def git_commit(project: Path) -> str:
    done = run(["git", "-C", str(project), "rev-parse", "--short=12", "HEAD"], check=False)
    return done.stdout.strip() if done.returncode == 0 else "none"  # not a git repository


def the_run(client, name: str):
    """The one run named `name` (a local run's folder), in any experiment of the store."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(experiments, f"attributes.run_name = '{name}'")
    assert len(found) == 1, [r.info.run_id for r in found]
    return found[0]


def recorded_run(project, uri: str, folder: Path, data: Path, given: dict) -> dict:
    """What a local run left, and its MLflow run as the store at `uri` has it."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    return {"client": client, "run": the_run(client, folder.name), "folder": folder,
            "data": data, "image": image_of(project["path"], project["env"],
            project["settings"]), "given": given, "project": project["path"]}  # fmt: skip


@pytest.fixture(scope="module")
def embedded(project, trained):
    """The shared project's train-local run, with nothing set: in outputs/mlflow/mlflow.db."""
    store = f"sqlite:///{project['path'] / 'outputs' / 'mlflow' / 'mlflow.db'}"
    data = project["path"] / "data"
    return recorded_run(project, store, trained["folder"], data, trained["hyperparameters"])


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """`mlflow server` on localhost with a SQLite backend, as a team would run one."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
               f"sqlite:///{folder / 'x.db'}", "--artifacts-destination", str(folder / "artifacts"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    with (folder / "server.log").open("w") as log:
        server = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + SERVER_BOOT_SECONDS
        while not health(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start:\n{(folder / 'server.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def health(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def served(project, tracking_server, tmp_path_factory):
    """A short train-local with MLFLOW_TRACKING_URI set to the server, in a copy of the shared
    project (its outputs/latest stays the shared run) whose data has a training file with an
    example fewer. The same code: the same image."""
    copy = tmp_path_factory.mktemp("served") / project["path"].name
    shutil.copytree(project["path"], copy, ignore=shutil.ignore_patterns("outputs", "checkpoints"))
    changed = sorted((copy / "data" / "training").glob("*.npz"))[0]
    arrays = dict(np.load(changed))
    np.savez(changed, **{name: values[:-1] for name, values in arrays.items()})
    env = {**project["env"], "MLFLOW_TRACKING_URI": tracking_server}
    with Stopwatch("train-local, 1 epoch, tracked by an MLflow server"):
        done = make(copy, "train-local", env=env, HPARAMS="epochs=1", **project["settings"])
    folder = (copy / "outputs" / "latest").resolve()
    served = recorded_run({**project, "path": copy}, tracking_server, folder, copy / "data",
                          {"epochs": "1"})  # fmt: skip
    return served | {"said": done.stdout, "uri": tracking_server}


@pytest.fixture(params=["embedded", "server"])
def recorded(request):
    """The run in the embedded store, then the run on the tracking server."""
    return request.getfixturevalue({"embedded": "embedded", "server": "served"}[request.param])


def test_the_run_has_every_hyperparameter_as_train_py_got_it(recorded):
    expected = declared_hyperparameters(recorded["project"]) | recorded["given"]
    assert recorded["run"].data.params == expected
    # what the training toolkit passed train.py on its command line is among them
    log = (recorded["folder"] / "train.log").read_text()
    command = re.search(r"running /opt/ml/code/train.py(.*)$", log, re.M)[1]
    passed = dict(re.findall(r"--(\S+) (\S+)", command))
    assert passed and passed.items() <= expected.items(), (passed, expected)


def test_each_metrics_history_is_train_logs_metric_lines_line_for_line(recorded):
    client, run_id = recorded["client"], recorded["run"].info.run_id
    expected = metric_lines(recorded["folder"] / "train.log")
    assert len(expected) == 6 and set(recorded["run"].data.metrics) == set(expected)
    for name, lines in expected.items():
        history = sorted(client.get_metric_history(run_id, name), key=lambda m: m.timestamp)
        assert [(m.step, m.value) for m in history] == lines, name


def test_the_tags_give_the_image_digest_each_channels_hash_the_commit_and_the_hosts(recorded):
    tags, folder, data = recorded["run"].data.tags, recorded["folder"], recorded["data"]
    digest = run(["docker", "image", "inspect", "--format", "{{.Id}}", recorded["image"]])
    channels = sorted(p for p in data.iterdir() if p.is_dir())
    assert [p.name for p in channels] == ["test", "training", "validation"]
    expected = {"project": "Scale Out", "kind": "train-local", "where": "local",
                "image": recorded["image"], "image.digest": digest.stdout.strip(),
                "git.commit": git_commit(recorded["project"]), "git.dirty": "False",
                "instance.type": "local", "instance.count": "1", "spot": "False",
                "run.folder": str(folder), "model": str(folder / "model.tar.gz")}  # fmt: skip
    expected |= {f"data.{channel.name}": channel_hash(channel) for channel in channels}
    assert {key: tags.get(key) for key in expected} == expected
    assert (folder / "model.tar.gz").is_file()
    assert recorded["run"].info.status == "FINISHED"


def test_the_artifacts_are_the_runs_train_log_and_its_chart(recorded, tmp_path):
    client, run_id = recorded["client"], recorded["run"].info.run_id
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["metrics.png", "train.log"]
    for name in ("train.log", "metrics.png"):
        copy = Path(client.download_artifacts(run_id, name, str(tmp_path)))
        assert copy.read_bytes() == (recorded["folder"] / name).read_bytes(), name
    assert (tmp_path / "metrics.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_changed_data_file_changes_its_channels_hash_and_no_other(embedded, served):
    before, after = embedded["run"].data.tags, served["run"].data.tags
    assert before["data.training"] != after["data.training"]
    for channel in ("validation", "test"):
        assert before[f"data.{channel}"] == after[f"data.{channel}"], channel


def test_with_a_tracking_server_set_the_run_goes_there_and_not_to_the_project(served):
    run_id = served["run"].info.run_id
    assert f"tracked: MLflow run {run_id} ({served['uri']}); make runs lists it" in served["said"]
    store = served["project"] / "outputs" / "mlflow"
    assert not (store / "mlflow.db").exists() and list((store / "pending").iterdir()) == []


# ---- make runs ----


def make_runs(project, **settings) -> str:
    done = make(project["path"], "runs", env=project["env"], VENV=project["settings"]["VENV"],
                **settings)  # fmt: skip
    print(f"\n$ make runs {' '.join(f'{k}={v}' for k, v in settings.items())}\n{done.stdout}")
    return done.stdout


def test_make_runs_lists_the_run_with_its_hyperparameters_objective_and_test_score(
    project, embedded
):
    out, name = make_runs(project), embedded["folder"].name
    series = metric_lines(embedded["folder"] / "train.log")
    assert re.search(r"^run +started +kind +status +hyperparameters +validation:accuracy +"
                     r"test:accuracy +model$", out, re.M), out  # fmt: skip
    row = next(line for line in out.splitlines() if line.startswith(name + " "))
    cells = row.split()
    assert cells[3:6] == ["train-local", "FINISHED", "epochs=3"], row
    objective, test = series["validation:accuracy"][-1][1], series["test:accuracy"][-1][1]
    assert cells[6:] == [
        f"{objective:.4g}",
        f"{test:.4g}",
        str(embedded["folder"] / "model.tar.gz"),
    ]


def test_make_runs_run_shows_one_run_in_full(project, embedded):
    run_id, name = embedded["run"].info.run_id, embedded["folder"].name
    out = make_runs(project, RUN=run_id)
    assert out.splitlines()[0] == f"run {name} (id {run_id}): FINISHED"
    assert "hyperparameters: batch-size=64 epochs=3 learning-rate=0.001 seed=42" in out
    for metric, lines in metric_lines(embedded["folder"] / "train.log").items():
        assert re.search(rf"^  {metric} +\S+  \({len(lines)} value\(s\)\)$", out, re.M), metric
    for key, value in embedded["run"].data.tags.items():
        if key.startswith(("data.", "image", "git.", "instance.")):
            assert re.search(rf"^  {re.escape(key)} +{re.escape(value)}$", out, re.M), key
    assert "artifacts: metrics.png, train.log" in out
    assert f"serve it: make serve-local RUN={run_id}" in out
    assert make_runs(project, RUN=name).splitlines()[0] == out.splitlines()[0]  # by its name


def test_serve_local_run_serves_that_runs_model_not_the_newest(project, embedded, tmp_path):
    port, log, run_id = free_port(), tmp_path / "serve-local.log", embedded["run"].info.run_id
    settings = {**project["settings"], "SERVE_PORT": port, "RUN": run_id}
    latest = project["path"] / "outputs" / "latest"  # the newest run, served without RUN=:
    newest = latest.readlink()  # set aside here, so only RUN= can find a model
    latest.unlink()
    try:
        with started(project["path"], "serve-local", log, "ready: ", env=project["env"],
                     **settings):  # fmt: skip
            assert f"serving {embedded['folder']}" in log.read_text(), log.read_text()[-2000:]
            body = json.dumps({"instances": np.zeros((1, 8, 8)).tolist()}).encode()
            status, _, answer = http_call(port, "POST", "/invocations", body,
                                          {"Content-Type": JSON})  # fmt: skip
            assert status == 200 and b"predictions" in answer, answer[:300]
    finally:
        latest.symlink_to(newest)
    assert f"stopped; container scale-out-serve-{port} removed" in log.read_text()


# ---- make ui, seen in a headless Chromium ----


@pytest.fixture(scope="module")
def ui(project, trained, tmp_path_factory):
    port, log = free_port(), tmp_path_factory.mktemp("ui") / "make-ui.log"
    with started(project["path"], "ui", log, "(Ctrl-C stops it)", env=project["env"],
                 VENV=project["settings"]["VENV"], UI_PORT=port) as process:  # fmt: skip
        yield {"port": port, "log": log, "process": process}


def chromium(url: str, profile: Path, *action: str) -> str:
    """Debian's Chromium, headless, on `url`: what it prints (the DOM for --dump-dom)."""
    browser = debian_package("chromium", "chromium")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", "--window-size=1400,900",
               "--virtual-time-budget=20000", *action, url]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def ui_url(ui) -> str:
    said = re.search(
        r"^MLflow's UI: (http://\S+) \(Ctrl-C stops it\)$", ui["log"].read_text(), re.M
    )
    assert said, ui["log"].read_text()
    return said[1]


def test_make_ui_prints_its_url_and_mlflow_answers_there(ui, embedded):
    experiment = embedded["run"].info.experiment_id
    page = f"http://127.0.0.1:{ui['port']}/#/experiments/{experiment}"
    assert ui_url(ui) == f"{page}?workflowType=machine_learning"  # the runs, not GenAI's pages
    assert health(f"http://127.0.0.1:{ui['port']}")
    status, kind, page = http_call(ui["port"], "GET", "/", timeout=30)
    assert status == 200 and kind.startswith("text/html"), page[:300]


def test_the_ui_page_lists_the_run_in_a_headless_browser(ui, embedded, tmp_path):
    dom = chromium(ui_url(ui), tmp_path / "profile", "--dump-dom")
    assert embedded["folder"].name in dom, dom[-3000:]


def test_a_screenshot_of_the_ui_page_is_a_real_render(ui, embedded, tmp_path):
    from PIL import Image

    shot = tmp_path / "mlflow-ui.png"
    chromium(ui_url(ui), tmp_path / "profile", f"--screenshot={shot}")
    print(f"\nscreenshot of make ui's page: {shot}")
    with Image.open(shot) as image:
        assert image.size == (1400, 900)
        colours = image.convert("RGB").getcolors(maxcolors=1400 * 900)
    commonest = max(count for count, _ in colours)
    assert len(colours) > 100, len(colours)  # text, icons, a table: not one flat colour
    assert commonest < 0.95 * 1400 * 900, commonest  # not blank


def test_ctrl_c_stops_make_ui_and_its_server(ui):
    os.killpg(ui["process"].pid, signal.SIGINT)
    ui["process"].wait(timeout=60)
    deadline = time.monotonic() + 30  # mlflow server, in the same process group, ends too
    while health(f"http://127.0.0.1:{ui['port']}") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not health(f"http://127.0.0.1:{ui['port']}")
    assert "Traceback" not in ui["log"].read_text(), ui["log"].read_text()[-3000:]
