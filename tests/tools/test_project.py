"""The user's files the tools read, loaded by path from the project."""

import subprocess
import sys

from helpers import TEMPLATE_DIR


def test_the_tools_load_the_contract_without_importing_numpy_or_tensorflow(project_dir):
    script = (
        "import sys\n"
        "from smt import project\n"
        "runtime = project.runtime()\n"
        "print(runtime.coerce_hyperparameter('epochs', '3'))\n"
        "print(runtime.metric_definitions()[0]['Name'])\n"
        "print(runtime.format_metric('test:accuracy', 0.975))\n"
        "print(runtime.parse_metric_line('METRIC train:loss=0.5 epoch=2'))\n"
        "print(sorted({'numpy', 'tensorflow', 'tf_keras'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=project_dir / "code",
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "3",
        "train:loss",
        "METRIC test:accuracy=0.975",
        "('train:loss', 0.5, 2)",
        "[]",
    ]


def test_smt_help_needs_no_sdk_import():
    script = (
        "import sys; from smt import cli; cli.main(['help']); print('sagemaker' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=TEMPLATE_DIR)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"
