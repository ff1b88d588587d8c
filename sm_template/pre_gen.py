"""What the pre-generation hook does: check the answers, then (aws_checks=strict) AWS."""

import os
from pathlib import Path

from sm_template.aws_checks import check_against_aws
from sm_template.messages import note, report
from sm_template.replay import replay_hint
from sm_template.tools_pin import write as write_tools_pin
from sm_template.validation import validate


def run(answers: dict, template_dir: str | None = None) -> int:
    """Check everything, print what is wrong, and return the hook's exit status; when all is
    well, pin the template's tools in the project (the working directory)."""
    errors, warnings = validate(answers)
    # AWS is asked only about answers that make sense, so its errors are about AWS itself.
    # SM_TEMPLATE_AWS_CHECKS=skip overrides a saved aws_checks=strict: `make update` (cruft)
    # regenerates the project from its saved answers, from the old and the new template, and
    # those answers were checked when the project was made; an update must need no AWS access
    # (and must never create a repository).
    if (
        not errors
        and answers["aws_checks"] == "strict"
        and os.environ.get("SM_TEMPLATE_AWS_CHECKS") != "skip"
    ):
        note(
            f"checking account {answers['aws_account_id']} and ECR repository "
            f"{answers['ecr_repository']} in {answers['aws_region']} with AWS "
            "(answer aws_checks=skip to generate offline)"
        )
        errors = check_against_aws(answers)
    report(errors, warnings, _replay_hint(answers, errors) if errors else None)
    if not errors and template_dir:
        write_tools_pin(answers, Path(template_dir), Path.cwd())
    return 1 if errors else 0


def _replay_hint(answers: dict, errors: list[str]) -> list[str]:
    """cookiecutter saved the answers before this hook ran: how to fix and replay them.
    Only a help: should finding them fail, the errors are still reported as they are."""
    try:
        return replay_hint(answers, errors)
    except Exception:
        return []
