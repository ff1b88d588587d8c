"""The figures of streamed channels (issue 22), for bench/run.py.

  peak memory of one epoch of `docker run --memory=LIMIT IMAGE train`, at 1x, 4x and 16x a
    base size, 16x at least 3x the limit     vs the same at 1x        target: completes, <= 1.1x
  wall time of that epoch at 4x and 16x      vs 4 and 16 times 1x     target <= 1.2x (linear)
  training steps/s, the streamed channel     vs the same arrays in memory (the pipeline the
                                                runtime had: from_tensor_slices, a shuffle of
                                                them all, batch, prefetch)  target >= 0.9x
  the streamed pipeline alone (no model)     reported: the ceiling of the above

The training channel is synthetic: uint8 28x28 images (MNIST-like: mostly zero, so the .npz
files compress as MNIST's do) and labels 0..9, in files of at most 16 MiB of images, as make
data writes them. Peak memory is the cgroup's: the container's shell samples its memory.stat
(the processes' own memory: rss, or anon in cgroup v2) while train runs, and prints it with the
cgroup's own peak (memory.max_usage_in_bytes or memory.peak), which counts the page cache too.
"""

import re
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np

FILE_BYTES = 16 * 2**20  # of images in a file at most, as scripts/prepare_data.py writes them
SHAPE = (28, 28)
MiB = 2**20
BASE_BYTES = {False: 320 * MiB, True: 8 * MiB}  # of training images at 1x; by --quick
SIZES = {False: (1, 4, 16), True: (1, 4)}
LIMIT_MIB = 1024  # the container's memory; 16x the base is 5x it
LIMIT = f"{LIMIT_MIB}m"
SMALL_CHANNEL = 2_000  # examples of validation and of test
THROUGHPUT_ROUNDS = {False: 3, True: 1}  # an epoch of each pipeline per round, alternating
ROW_PREFIXES = (  # of this module's rows in RESULTS.md
    "| peak memory, 1 epoch",
    "| peak memory, 16x's epoch",
    "| wall time of that epoch",
    "| training steps/s, channel streamed",
    "| the streamed pipeline alone",
)
THROUGHPUT_SCRIPT = Path(__file__).with_name("stream_throughput.py")

# Runs train as the image's entrypoint would; samples the processes' memory meanwhile.
MEASURED_TRAIN = r"""
cg=/sys/fs/cgroup; [ -f $cg/memory.peak ] || cg=/sys/fs/cgroup/memory
train & pid=$!
peak=0
while kill -0 $pid 2>/dev/null; do
    while read key value; do
        case $key in total_rss|anon) [ "$value" -gt "$peak" ] && peak=$value;; esac
    done < $cg/memory.stat
    sleep 0.2
done
wait $pid; code=$?
echo "BENCH rss_peak=$peak"
echo "BENCH cgroup_peak=$(cat $cg/memory.peak 2>/dev/null || cat $cg/memory.max_usage_in_bytes)"
exit $code
"""


def write_channel(folder: Path, examples: int, seed: int) -> int:
    """.npz files of `examples` synthetic images and labels in folder; their bytes on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pool = np.zeros((4096, *SHAPE), np.uint8)  # strokes of ink in a box, zero around it
    for image in pool:
        (top, left), (height, width) = rng.integers(4, 10, 2), rng.integers(10, 16, 2)
        ink = rng.integers(0, 256, (height, width), dtype=np.uint8)
        image[top : top + height, left : left + width] = ink * (rng.random(ink.shape) < 0.5)
    per_file = FILE_BYTES // pool[0].nbytes
    files = -(-examples // per_file)
    for index in range(files):
        count = min(per_file, examples - index * per_file)
        x = pool[rng.integers(0, len(pool), count)]
        y = rng.integers(0, 10, count, dtype=np.uint8)
        np.savez_compressed(folder / f"data-{index:05d}-of-{files:05d}.npz", x=x, y=y)
    return sum(file.stat().st_size for file in folder.glob("*.npz"))


def small_channels(data: Path) -> None:
    """The data folder sagemaker_host copies: small validation and test; training left empty,
    for the bench to write in place (no copy of gigabytes)."""
    shutil.rmtree(data, ignore_errors=True)
    (data / "training").mkdir(parents=True)
    write_channel(data / "validation", SMALL_CHANNEL, seed=1)
    write_channel(data / "test", SMALL_CHANNEL, seed=2)


def number(name: str, log: str) -> float:
    found = re.findall(rf"{name}=(\d+)", log)
    if not found:
        sys.exit(f"bench: no {name} in the container's output:\n{log[-3000:]}")
    return float(found[-1])


def epoch_seconds(log: str) -> tuple[int, float]:
    found = re.findall(r"epoch 1: (\d+) steps in ([\d.]+) s", log)
    if not found:
        sys.exit(f"bench: no 'epoch 1' line in the training log:\n{log[-3000:]}")
    return int(found[-1][0]), float(found[-1][1])


def memory_run(project, sh, scratch: Path, examples: int, epochs: int = 1) -> dict:
    """Epochs of train in SageMaker's layout, the container's memory limited to LIMIT."""
    from engines import sagemaker_host

    root, data = scratch / "stream-opt-ml", scratch / "stream-data"
    shutil.rmtree(root, ignore_errors=True)
    small_channels(data)
    mounts = sagemaker_host(root, data, {"epochs": str(epochs)})
    disk = write_channel(root / "input" / "data" / "training", examples, seed=0)
    command = ["docker", "run", "--rm", "--hostname", "algo-1", f"--memory={LIMIT}"]
    command += [f"--memory-swap={LIMIT}", *mounts, project.image(), "sh", "-c", MEASURED_TRAIN]
    seconds, log = sh(command, timeout=1800, check=False)
    shutil.rmtree(root, ignore_errors=True)
    if "BENCH rss_peak" not in log or "trained in" not in log:
        sys.exit(f"bench: train at {examples} examples did not complete:\n{log[-3000:]}")
    steps, epoch = epoch_seconds(log)
    return {
        "examples": examples,
        "disk": disk,
        "rss": number("rss_peak", log),
        "cgroup": number("cgroup_peak", log),
        "steps": steps,
        "epoch": epoch,
        "seconds": seconds,
    }


def figures_memory(project, sh, scratch: Path, quick: bool) -> list[dict]:
    base = BASE_BYTES[quick] // int(np.prod(SHAPE))
    runs = {size: memory_run(project, sh, scratch, base * size) for size in SIZES[quick]}
    first, limit = runs[1], LIMIT_MIB * MiB

    def described(size: int) -> str:
        run = runs[size]
        images = run["examples"] * int(np.prod(SHAPE)) / MiB
        return (
            f"{size}x: {run['examples']:,} examples, {images:.0f} MiB of images "
            f"({run['disk'] / MiB:.0f} MiB on disk), --memory={LIMIT}"
        )

    rows = []
    for size, run in runs.items():
        grown = run["rss"] / first["rss"]
        rows.append(
            {
                "figure": f"peak memory, 1 epoch of docker run IMAGE train, {described(size)}",
                "value": f"{run['rss'] / MiB:.0f} MiB",
                "baseline": "the same at 1x",
                "baseline_value": f"{first['rss'] / MiB:.0f} MiB",
                "ratio": f"{grown:.2f}",
                "target": "completes, under the limit, <= 1.1x",
                "met": run["rss"] < limit and grown <= 1.1,
                "note": f"the processes' rss; the cgroup's peak with its page cache "
                f"{run['cgroup'] / MiB:.0f} MiB",
            }
        )
    if not quick:  # the same steps as 16x's one epoch, on 1x the data: what time alone adds
        same = memory_run(project, sh, scratch, base, epochs=16)
        rows.append(
            {
                "figure": f"peak memory, 16x's epoch ({runs[16]['steps']:,} steps) against 16"
                f" epochs of 1x ({16 * same['steps']:,}): the data's size apart from the run's",
                "value": f"{runs[16]['rss'] / MiB:.0f} MiB (16x, 1 epoch)",
                "baseline": "1x, 16 epochs",
                "baseline_value": f"{same['rss'] / MiB:.0f} MiB",
                "ratio": f"{runs[16]['rss'] / same['rss']:.2f}",
                "target": "<= 1.1x",
                "met": runs[16]["rss"] / same["rss"] <= 1.1,
                "note": "",
            }
        )
    for size, run in runs.items():
        if size == 1:
            continue
        linear = size * first["epoch"]
        rows.append(
            {
                "figure": f"wall time of that epoch, {size}x ({run['steps']:,} steps)",
                "value": f"{run['epoch']:.1f} s",
                "baseline": f"{size} times the 1x epoch ({first['steps']:,} steps)",
                "baseline_value": f"{size} x {first['epoch']:.1f} s",
                "ratio": f"{run['epoch'] / linear:.2f}",
                "target": "<= 1.2x (linear)",
                "met": run["epoch"] / linear <= 1.2,
                "note": f"the whole docker run {run['seconds']:.0f} s",
            }
        )
    return rows


def figures_throughput(project, sh, scratch: Path, quick: bool) -> list[dict]:
    """Streamed against in memory in one container, on a channel of the 1x size."""
    data = scratch / "stream-throughput"
    shutil.rmtree(data, ignore_errors=True)
    examples = BASE_BYTES[quick] // int(np.prod(SHAPE))
    write_channel(data, examples, seed=0)
    command = ["docker", "run", "--rm", "-v", f"{data}:/data:ro"]
    command += ["-v", f"{THROUGHPUT_SCRIPT}:/bench/throughput.py:ro", project.image()]
    command += ["python", "/bench/throughput.py", "/data", str(THROUGHPUT_ROUNDS[quick])]
    _, log = sh(command, timeout=1800)
    shutil.rmtree(data, ignore_errors=True)
    rates = {
        name: [float(rate) for rate in re.findall(rf"BENCH {name} ([\d.]+) steps/s", log)]
        for name in ("streamed", "in-memory", "pipeline")
    }
    if not all(rates.values()):
        sys.exit(f"bench: the throughput script printed no rates:\n{log[-3000:]}")
    streamed, in_memory, pipeline = (statistics.median(r) for r in rates.values())
    steps = re.findall(r"BENCH steps (\d+) batch (\d+)", log)[-1]
    where = f"{examples:,} examples, batch {steps[1]}, {steps[0]} steps an epoch"
    return [
        {
            "figure": f"training steps/s, channel streamed from its files ({where})",
            "value": f"{streamed:.0f} steps/s",
            "baseline": "the same arrays in memory (from_tensor_slices, shuffle, batch, prefetch)",
            "baseline_value": f"{in_memory:.0f} steps/s",
            "ratio": f"{streamed / in_memory:.2f}",
            "target": ">= 0.9x",
            "met": streamed / in_memory >= 0.9,
            "note": f"median of {len(rates['streamed'])} epochs each, alternating, one container",
        },
        {
            "figure": "the streamed pipeline alone, no model (the ceiling)",
            "value": f"{pipeline:.0f} steps/s",
            "baseline": "training on it",
            "baseline_value": f"{streamed:.0f} steps/s",
            "ratio": f"{pipeline / streamed:.1f}",
            "target": "report",
            "met": None,
            "note": "",
        },
    ]
