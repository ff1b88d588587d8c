"""What the pre-prompt hook does: offer the caller's AWS account and region as defaults.

cookiecutter runs this hook in a temporary copy of the template before it asks anything,
so rewriting that copy's cookiecutter.json changes only the defaults shown (and used with
--no-input). Answers given on the command line still win. Nothing here may stop a bake:
without credentials, boto3 or the aws CLI, or when AWS is slow, the template's defaults
stay and the pre-generation hook explains any problem later.
"""

import json
import os
import shutil
import threading
from pathlib import Path

from sm_template.aws_checks import (
    AwsCallFailed,
    Deadline,
    caller_account,
    find_client,
    run_aws_cli,
)
from sm_template.messages import note
from sm_template.regions import PARTITION_OF_REGION

# Asked before the first prompt: a user waits for this, so much less than the checks' 10 s.
TIME_BUDGET_S = 4.0
# STS answers for any account in every commercial region; used when no region is configured.
FALLBACK_REGION = "us-east-1"


def configured_region() -> str | None:
    """The region the caller's AWS setup names (environment, then profile), if a known one.
    The profile is read with botocore, or with the aws CLI when cookiecutter's Python has
    no boto3 (as with a plain `pipx install cookiecutter`)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        try:
            import botocore.session

            region = botocore.session.get_session().get_config_variable("region")
        except ImportError:
            aws = shutil.which("aws")
            if aws:
                region = run_aws_cli([aws, "configure", "get", "region"], 3).stdout.strip()
        except Exception:  # a broken profile: no default to offer
            region = None
    return region if region in PARTITION_OF_REGION else None


def aws_defaults() -> dict[str, str]:
    """{"aws_account_id": ..., "aws_region": ...}, for whatever the caller's setup tells."""
    defaults = {}
    region = configured_region()
    if region:
        defaults["aws_region"] = region
    client = find_client(Deadline(TIME_BUDGET_S))
    if client is not None:
        try:
            defaults["aws_account_id"] = caller_account(client, region or FALLBACK_REGION)
        except AwsCallFailed:
            pass  # no or stale credentials: the prompt keeps the template's default
    return defaults


def aws_defaults_in_time() -> dict[str, str]:
    """aws_defaults(), or nothing if it takes longer than the budget: finding credentials
    (SSO refresh, assume-role, credential_process) has timeouts of its own, up to minutes."""
    found: dict[str, str] = {}
    worker = threading.Thread(target=lambda: found.update(aws_defaults()), daemon=True)
    worker.start()
    worker.join(TIME_BUDGET_S + 1)
    return dict(found) if not worker.is_alive() else {}


def run(context_file: Path) -> int:
    # The same switch as the pre-generation hook: no AWS call at all (make update uses it).
    if os.environ.get("SM_TEMPLATE_AWS_CHECKS") == "skip":
        return 0
    defaults = aws_defaults_in_time()
    if defaults:
        context = json.loads(context_file.read_text(encoding="utf-8"))
        context.update(defaults)
        context_file.write_text(json.dumps(context, indent=2) + "\n", encoding="utf-8")
        offered = ", ".join(f"{key} {value}" for key, value in defaults.items())
        note(f"defaults from your AWS setup: {offered}")
    return 0
