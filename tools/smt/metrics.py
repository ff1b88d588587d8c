"""make metrics [JOB=NAME]: the final metric values of the newest local run, of the run
outputs/NAME, else of the SageMaker job NAME; and a chart of a local run's metrics (SageMaker's
console charts a job)."""

from pathlib import Path

from smt import aws, jobs, project
from smt.errors import BadSetting, Failure


def local_series(log: Path) -> dict[str, list[tuple[int, float]]]:
    series, epoch = {}, 0
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if parsed := project.runtime().parse_metric_line(line):
            name, value, epoch = *parsed[:2], parsed[2] or epoch  # no epoch (test:*): the last
            series.setdefault(name, []).append((epoch, value))
    return series


def chart(series: dict, title: str, path: Path):
    """A panel per quantity (loss, accuracy): a line per metric by epoch, test's value a point."""
    from matplotlib.figure import Figure  # not pyplot: no display, no backend to choose

    quantity = {name: name.partition(":")[2] or name for name in series}  # train:loss -> loss
    panels = list(dict.fromkeys(quantity.values()))
    figure = Figure(figsize=(5.5 * len(panels), 4), layout="tight")
    for axis, panel in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        for name in (name for name in series if quantity[name] == panel):
            fmt, size = ("*", 14) if len(series[name]) == 1 else ("o-", 4)  # once: a point
            axis.plot(*zip(*series[name], strict=True), fmt, ms=size, label=name.partition(":")[0])
        axis.set(title=panel, xlabel="epoch")
        axis.grid(alpha=0.3)
        axis.legend()
        axis.xaxis.get_major_locator().set_params(integer=True)  # whole epochs
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    return figure


def main(settings) -> int:
    outputs = settings.project_dir / "outputs"
    job, log = settings.job, outputs / (settings.job or "latest") / "train.log"
    if log.is_file():
        job, series = log.resolve().parent.name, local_series(log)
    elif not job:
        raise BadSetting("JOB: no local run yet; run make train-local, or name a job: JOB=<name>")
    else:
        with jobs.about(job, settings.aws_region, "read the metrics of"):
            sagemaker = aws.session(settings.aws_region).client("sagemaker")
            answer = sagemaker.describe_training_job(TrainingJobName=job)
        series = {m["MetricName"]: [(0, m["Value"])] for m in answer.get("FinalMetricDataList", [])}
    if not series:
        raise Failure(f"job {job} has no metrics (yet)")
    print(f"{'metric':<22} {'final value':>12}")
    for name, points in series.items():
        print(f"{name:<22} {points[-1][1]:>12.6g}")
    if log.is_file():
        chart(series, job, png := outputs / job / "metrics.png")
        print(f"chart: {png}")
    return 0
