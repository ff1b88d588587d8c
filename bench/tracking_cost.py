"""The figures of tracking every run in MLflow (issue 21), for bench/run.py.

  make venv's tools, uv: the project's      vs the same without those two     target: the same
    requirements-tools.txt (mlflow and         pins (sagemaker brings MLflow     packages; cached,
    sagemaker-mlflow pinned), no cache once,   anyway), cached                   <= 10% or 1 s more
    then cached
  import mlflow, a fresh process            vs importing the SDK's ModelTrainer (what
                                               train-local imports already)   reported
  a run's first sync into a new SQLite      vs a later run's sync into that store, in a new
    store (its tables made)                    process as each train-local    reported

A sync is smt's own (tracking.local_record, then Tracker.track): the data's hashes, the run, its
parameters, every METRIC line of a real train.log (train.py on this host), its chart and
artifacts, the end. `python bench/tracking_cost.py sync HOME FOLDER NAME`, in a project, is one
run's sync in a process of its own: it prints the seconds of `import mlflow` and of the sync.
"""

import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
UV = Path(sys.executable).parent / "uv"
PINS = ("mlflow==", "sagemaker-mlflow==")  # the lines of requirements-tools.txt measured
OWN = ("mlflow", "mlflow-skinny", "mlflow-tracing", "sagemaker-mlflow")  # MLflow's distributions
ROW_PREFIXES = (  # of this module's rows in RESULTS.md
    "| make venv's tools (requirements-tools.txt",
    "| import mlflow",
    "| a run's first sync",
)
SIZES = """
import importlib.metadata as metadata, json
def size(dist):
    paths = (file.locate() for file in dist.files or [])
    return sum(path.stat().st_size for path in paths if path.is_file())
print(json.dumps({dist.metadata["Name"].lower(): size(dist) for dist in metadata.distributions()}))
"""


def figures(project, sh, scratch: Path, quick: bool, train_log: str) -> list[dict]:
    install = figure_install(project, sh, scratch, quick)
    return [install, *figures_sync(project, sh, scratch, quick, train_log)]


def figure_install(project, sh, scratch: Path, quick: bool) -> dict:
    """requirements-tools.txt as the project has it, and without the MLflow pins, each into a
    fresh virtualenv: once with an empty uv cache (a first make venv: the downloads), then
    alternating with that cache (the same downloads for both: what remains is the pins' own
    cost, free of the network's noise)."""
    row = {"figure": "make venv's tools (requirements-tools.txt, uv), MLflow pinned: no cache;"
           " then cached, the pins' own cost",
           "baseline": "the same without the mlflow and sagemaker-mlflow pins",
           "target": "the same packages; cached <= 10% or 1 s more"}  # fmt: skip
    if quick:
        return row | {"value": "skipped (--quick)", "baseline_value": "skipped (--quick)",
                      "ratio": "", "met": None, "note": ""}  # fmt: skip
    unpinned = scratch / "unpinned"
    unpinned.mkdir(exist_ok=True)
    shutil.copy(project.path / "requirements-smt.txt", unpinned)
    lines = (project.path / "requirements-tools.txt").read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(PINS)]
    if len(lines) - len(kept) != len(PINS):
        sys.exit(f"bench: requirements-tools.txt does not pin {' and '.join(PINS)} one a line")
    (unpinned / "requirements-tools.txt").write_text("".join(kept))
    folders = {"pinned": project.path, "unpinned": unpinned}
    cache = scratch / "uv-cache"
    shutil.rmtree(cache, ignore_errors=True)
    cold, frozen, sizes = install(sh, project.env, scratch, project.path, cache)
    times = {"pinned": [], "unpinned": []}
    for n in range(3):
        for which in sorted(folders, reverse=n % 2 == 1):
            seconds, packages, _ = install(sh, project.env, scratch, folders[which], cache)
            times[which].append(seconds)
            if packages != frozen:
                sys.exit(f"bench: requirements-tools.txt, {which}, installs other packages")
    shutil.rmtree(cache, ignore_errors=True)
    pinned, bare = statistics.median(times["pinned"]), statistics.median(times["unpinned"])
    own = sum(sizes[name] for name in OWN)
    return row | {
        "value": f"no cache {cold:.1f} s; cached {pinned:.1f} s",
        "baseline_value": f"cached {bare:.1f} s",
        "ratio": f"{pinned / bare:.2f}",
        "met": pinned - bare <= max(1.0, 0.1 * bare),
        "note": f"{pinned - bare:+.1f} s; the same {len(frozen)} packages either way; MLflow's"
        f" own: {len(OWN)} distributions, {own / 1e6:.0f} MB of the venv's"
        f" {sum(sizes.values()) / 1e6:.0f} MB",
    }


def install(sh, env: dict, scratch: Path, folder: Path, cache: Path) -> tuple:
    """(seconds of uv pip install -r folder/requirements-tools.txt into a fresh virtualenv, the
    packages it holds then, their sizes)."""
    venv = scratch / "tools-venv"
    shutil.rmtree(venv, ignore_errors=True)
    sh([PYTHON, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    env = {**env, "UV_CACHE_DIR": str(cache)}
    command = [str(UV), "pip", "install", "--quiet", "--system-certs", "--python", python]
    seconds = sh([*command, "-r", str(folder / "requirements-tools.txt")], env=env)[0]
    frozen = sh([str(UV), "pip", "freeze", "--python", python], env=env)[1].split()
    sizes = json.loads(sh([python, "-c", SIZES])[1].strip().splitlines()[-1])
    shutil.rmtree(venv, ignore_errors=True)
    return seconds, sorted(frozen), sizes


def figures_sync(project, sh, scratch: Path, quick: bool, train_log: str) -> list[dict]:
    folder = scratch / "tracked-run"
    folder.mkdir(exist_ok=True)
    (folder / "train.log").write_text(train_log)
    env = {**project.env, "PYTHONPATH": str(ROOT / "tools")}

    def sync(home: Path, name: str) -> dict:
        command = [PYTHON, str(Path(__file__)), "sync", str(home), str(folder), name]
        return json.loads(sh(command, cwd=project.path, env=env)[1].strip().splitlines()[-1])

    sdk = "from sagemaker.train import ModelTrainer"
    first, later, sdk_imports = [], [], []
    for n in range(1 if quick else 3):
        home = scratch / f"tracked-{n}"  # a project folder of its own: a new store
        first.append(sync(home, f"bench-{n}-first"))
        later.append(sync(home, f"bench-{n}-later"))
        sdk_imports.append(sh([PYTHON, "-c", f"import time; t = time.perf_counter(); {sdk};"
                               " print(time.perf_counter() - t)"])[1].split()[-1])  # fmt: skip
    imports = statistics.median(r["import"] for r in first + later)
    sdk_import = statistics.median(float(s) for s in sdk_imports)
    made, again = (statistics.median(r["sync"] for r in runs) for runs in (first, later))
    logged = first[0]
    return [
        {
            "figure": "import mlflow (a fresh process)",
            "value": f"{imports:.2f} s",
            "baseline": "import the SDK's ModelTrainer (train-local imports it already)",
            "baseline_value": f"{sdk_import:.2f} s",
            "ratio": f"{imports / sdk_import:.2f}",
            "target": "report",
            "met": None,
            "note": f"this machine's load average {os.getloadavg()[0]:.1f} at the end",
        },
        {
            "figure": f"a run's first sync into a new SQLite store: its tables, the run, "
            f"{logged['values']} metric values, {logged['artifacts']} artifacts",
            "value": f"{made:.2f} s",
            "baseline": "a later run's sync into that store (a new process, as each train-local)",
            "baseline_value": f"{again:.2f} s",
            "ratio": f"{made / again:.1f}",
            "target": "report",
            "met": None,
            "note": f"a later run costs {imports + again:.1f} s in all, import included",
        },
    ]


def measured_sync(home: Path, folder: Path, name: str) -> dict:
    """One local run's tracking, as train-local's (the image digest given): seconds."""
    from types import SimpleNamespace

    from smt import project, settings, tracking

    started = time.perf_counter()
    import mlflow  # noqa: F401

    imported = time.perf_counter()
    given = SimpleNamespace(project_dir=home, project_name="Bench", mlflow_tracking_uri=None)
    values = settings.derive(given)  # the store's default, as every command gets it
    job = SimpleNamespace(
        image="bench:1",
        instance_type="local",
        instance_count=1,
        spot=False,
        data_dir=project.root() / "data",
        hyperparameters={"epochs": 3},
    )
    run = SimpleNamespace(folder=folder, name=name, started=tracking.ms())
    record = tracking.local_record(values, job, run, "sha256:" + "0" * 64, None)
    tracker = tracking.Tracker(values)
    if not tracker.track(record):
        sys.exit(f"bench: run {name} was not recorded")
    synced = time.perf_counter()
    client, run_id = tracker.client, record["run_id"]
    metrics = client.get_run(run_id).data.metrics
    values = sum(len(client.get_metric_history(run_id, key)) for key in metrics)
    artifacts = len(client.list_artifacts(run_id))
    return {"import": imported - started, "sync": synced - imported, "values": values,
            "artifacts": artifacts}  # fmt: skip


if __name__ == "__main__" and sys.argv[1:2] == ["sync"]:
    home, folder, name = sys.argv[2:5]
    print(json.dumps(measured_sync(Path(home), Path(folder), name)))
