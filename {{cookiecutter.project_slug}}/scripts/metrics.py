"""Show a training job's metrics: a table of the final values and a chart of each metric.

  metrics.py                 the newest local run (outputs/latest/train.log)
  metrics.py --job NAME      a local run in outputs/NAME, else a SageMaker job of that name
                             (its metrics from CloudWatch, as SageMaker recorded them)

The chart goes to outputs/<job>/metrics.png. Local logs are read with the same metric
definitions the launcher gives SageMaker (code/job_contract.py).
"""

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR / "code"))
from aws_clients import clients  # noqa: E402
from job_contract import METRIC_NAMES, parse_metric_line  # noqa: E402

# SageMaker publishes a job's metrics in this CloudWatch namespace, one series per host.
CLOUDWATCH_NAMESPACE = "/aws/sagemaker/TrainingJobs"


def local_series(log: Path) -> dict[str, list[tuple[float, float]]]:
    """metric -> [(epoch, value)]; final-only metrics sit after the last epoch."""
    series: dict[str, list[tuple[float, float]]] = {}
    last_epoch = 0
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        parsed = parse_metric_line(line)
        if parsed:
            name, value, epoch = parsed
            last_epoch = max(last_epoch, epoch or 0)
            series.setdefault(name, []).append((epoch or last_epoch, value))
    return series


def remote_series(job: str, region: str | None) -> dict[str, list[tuple[datetime, float]]]:
    """metric -> [(time, value)] for the job's first host, from CloudWatch."""
    sagemaker, cloudwatch = clients(region, "sagemaker", "cloudwatch")
    described = sagemaker.describe_training_job(TrainingJobName=job)
    start = described.get("TrainingStartTime") or described["CreationTime"]
    end = described.get("TrainingEndTime") or datetime.now(timezone.utc)
    queries = [
        {
            "Id": f"m{i}",
            "Label": name,
            "ReturnData": True,
            "MetricStat": {
                "Metric": {
                    "Namespace": CLOUDWATCH_NAMESPACE,
                    "MetricName": name,
                    "Dimensions": [{"Name": "Host", "Value": f"{job}/algo-1"}],
                },
                "Period": 60,
                "Stat": "Average",
            },
        }
        for i, name in enumerate(METRIC_NAMES)
    ]
    result = cloudwatch.get_metric_data(
        MetricDataQueries=queries,
        StartTime=start - timedelta(minutes=5),
        EndTime=end + timedelta(minutes=5),
    )
    series = {
        r["Label"]: sorted(zip(r["Timestamps"], r["Values"], strict=True))
        for r in result["MetricDataResults"]
        if r["Values"]
    }
    for final in described.get("FinalMetricDataList", []):  # when CloudWatch has no series
        series.setdefault(final["MetricName"], [(end, final["Value"])])
    return series


def chart(series: dict, title: str, x_label: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    names = [name for name in METRIC_NAMES if name in series]
    figure, axes = plt.subplots(len(names), 1, figsize=(7, 2.2 * len(names)), squeeze=False)
    for axis, name in zip(axes[:, 0], names, strict=True):
        xs, ys = zip(*series[name], strict=True)
        axis.plot(xs, ys, marker="o")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(x_label)
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="", help="a job name; default: the newest local run")
    parser.add_argument("--outputs-dir", type=Path, default=PROJECT_DIR / "outputs")
    parser.add_argument("--region", default=None, help="for a SageMaker job")
    args = parser.parse_args(argv)
    run_folder = args.outputs_dir / (args.job or "latest")
    if (run_folder / "train.log").is_file():
        job, x_label = run_folder.resolve().name, "epoch"
        series = local_series(run_folder / "train.log")
    elif not args.job:
        print(
            "error: no local run yet (outputs/latest); run make train-local, or pass "
            "JOB=<name> for a SageMaker job",
            file=sys.stderr,
        )
        return 2
    else:
        job, x_label = args.job, "time (UTC)"
        try:
            series = remote_series(job, args.region)
        except Exception as error:  # botocore's errors: one line, not a traceback
            print(f"error: could not read the metrics of job {job}: {error}", file=sys.stderr)
            return 1
    if not series:
        print(f"error: job {job} has no metrics (yet)", file=sys.stderr)
        return 1
    print(f"{'metric':<22} {'final value':>12}  points")
    for name in METRIC_NAMES:
        if name in series:
            print(f"{name:<22} {series[name][-1][1]:>12.6g}  {len(series[name])}")
    png = args.outputs_dir / job / "metrics.png"
    chart(series, job, x_label, png)
    print(f"chart: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
