"""make metrics: a run's final metric values as a table, and a chart of them.

make metrics              the newest local run (outputs/latest/train.log)
make metrics JOB=NAME     a local run in outputs/NAME, else the SageMaker job NAME (its
                          metrics from CloudWatch, as SageMaker recorded them)
"""

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from project_tools import aws, contract, jobs
from project_tools.settings import SettingsParser


def local_series(log: Path) -> dict[str, list[tuple[int, float]]]:
    """metric -> [(epoch, value)]; final-only metrics (test:*) sit at the last epoch."""
    series, last_epoch = {}, 0
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if parsed := contract.runtime().parse_metric_line(line):
            name, value, epoch = parsed
            last_epoch = max(last_epoch, epoch or 0)
            series.setdefault(name, []).append((epoch or last_epoch, value))
    return series


def remote_series(job: str, session) -> dict[str, list[tuple[datetime, float]]]:
    """metric -> [(time, value)] of the job's first host, as SageMaker put them in CloudWatch."""
    described = session.client("sagemaker").describe_training_job(TrainingJobName=job)
    end = described.get("TrainingEndTime") or datetime.now(timezone.utc)
    host = [{"Name": "Host", "Value": f"{job}/algo-1"}]  # a series per host and metric
    metric = {"Namespace": "/aws/sagemaker/TrainingJobs", "Dimensions": host}
    stat = {"Period": 60, "Stat": "Average"}
    queries = [
        dict(Id=f"m{i}", Label=name, MetricStat=dict(stat, Metric=dict(metric, MetricName=name)))
        for i, name in enumerate(contract.job_contract().METRIC_NAMES)
    ]
    start, margin = described["CreationTime"], timedelta(minutes=5)
    answer = session.client("cloudwatch").get_metric_data(
        MetricDataQueries=queries, StartTime=start - margin, EndTime=end + margin
    )
    series = {  # CloudWatch answers newest first
        result["Label"]: sorted(zip(result["Timestamps"], result["Values"], strict=True))
        for result in answer["MetricDataResults"]
        if result["Values"]
    }
    for final in described.get("FinalMetricDataList", []):  # when CloudWatch has no series
        series.setdefault(final["MetricName"], [(end, final["Value"])])
    return series


def chart(series: dict, title: str, x_label: str, path: Path):
    """One panel per quantity (loss: train:loss, validation:loss, test:loss): a line per metric,
    a marked point for one measured once (test, at the end). Saved to path and returned."""
    from matplotlib.figure import Figure  # not pyplot: no display, no backend to choose
    from matplotlib.ticker import MaxNLocator

    quantities: dict[str, list[str]] = {}
    for name in series:
        quantities.setdefault(name.partition(":")[2] or name, []).append(name)
    figure = Figure(figsize=(5.5 * len(quantities), 4))
    figure.subplots(1, len(quantities))
    for axis, (quantity, names) in zip(figure.axes, quantities.items(), strict=True):
        for name in names:
            once = {"marker": "*", "markersize": 14, "linestyle": ""}  # measured once: a point
            style = once if len(series[name]) == 1 else {"marker": "o", "markersize": 4}
            axis.plot(*zip(*series[name], strict=True), label=name.partition(":")[0], **style)
        axis.set(title=quantity, xlabel=x_label)
        axis.grid(alpha=0.3)
        axis.legend()
        if x_label == "epoch":
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
    if x_label != "epoch":
        figure.autofmt_xdate()
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return figure


def main(argv=None) -> int:
    parser = SettingsParser(__doc__)
    parser.setting("--job", "a local run or a SageMaker job; default: the newest local run")
    parser.setting("--aws-region", "the SageMaker job's region")
    parser.add_argument("--outputs-dir", type=Path, default=Path(__file__).parents[1] / "outputs")
    args = parser.parse_args(argv)
    log = args.outputs_dir / (args.job or "latest") / "train.log"
    if not args.job and not log.is_file():
        no_run = "no local run yet (outputs/latest); run make train-local, or pass JOB=<name>"
        print(f"error: {no_run} for a SageMaker job", file=sys.stderr)
        return 2
    if log.is_file():
        job, x_label, series = log.resolve().parent.name, "epoch", local_series(log)
    else:
        job, x_label = args.job, "time (UTC)"
        try:
            series = remote_series(job, aws.session(args.aws_region))
        except Exception as error:  # botocore's errors: one line, not a traceback
            region = args.aws_region or "your AWS config's region"
            print(jobs.error_line(error, job, region, "read the metrics of"), file=sys.stderr)
            return 1
    names = contract.job_contract().METRIC_NAMES  # the project's, in its order
    if not (series := {name: series[name] for name in names if name in series}):
        print(f"error: job {job} has no metrics (yet)", file=sys.stderr)
        return 1
    print(f"{'metric':<22} {'final value':>12}  points")
    for name, points in series.items():
        print(f"{name:<22} {points[-1][1]:>12.6g}  {len(points)}")
    chart(series, job, x_label, png := args.outputs_dir / job / "metrics.png")
    print(f"chart: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
