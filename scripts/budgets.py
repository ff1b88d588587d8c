#!/usr/bin/env python3
"""The line budgets of issue 19, measured in a project baked with the defaults:
`python scripts/budgets.py` prints each figure against its budget (exit 1 over any)."""

import sys
import tempfile
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
USERS_PYTHON = [
    "code/train.py",
    "code/job_contract.py",
    "scripts/prepare_data.py",
    "run_estimator.py",
]


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def is_python(path: Path) -> bool:
    return path.suffix == ".py" or path.read_text(errors="replace").startswith(
        "#!/opt/venv/bin/python"
    )


def figures(project: Path) -> list[tuple[str, int, int]]:
    """(what, measured, budget)."""
    files = [p for p in project.rglob("*") if p.is_file()]
    python = [p for p in files if "tests" not in p.relative_to(project).parts and is_python(p)]
    package = sorted((TEMPLATE_DIR / "tools" / "smt").glob("*.py"))
    return [
        (
            "the four files the user owns, Python",
            sum(lines(project / f) for f in USERS_PYTHON),
            350,
        ),
        ("all Python in the project outside tests/", sum(map(lines, python)), 900),
        ("Makefile", lines(project / "Makefile"), 120),
        ("README.md", lines(project / "README.md"), 200),
        ("the package (tools/smt)", sum(map(lines, package)), 2200),
        (f"its largest module ({max(package, key=lines).name})", max(map(lines, package)), 300),
    ]


def bake(output_dir: Path) -> Path:
    from cookiecutter.main import cookiecutter

    return Path(cookiecutter(str(TEMPLATE_DIR), no_input=True, output_dir=str(output_dir),
                             extra_context={"aws_checks": "skip"}))  # fmt: skip


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        rows = figures(bake(Path(scratch)))
    for what, measured, budget in rows:
        print(f"{what:<45} {measured:>5} lines (budget {budget}){'  OVER' * (measured > budget)}")
    return int(any(measured > budget for _, measured, budget in rows))


if __name__ == "__main__":
    sys.exit(main())
