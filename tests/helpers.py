"""Helpers shared by the tests (fixtures are in conftest.py)."""

import os
import socket
import sys
from pathlib import Path

from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config
from cookiecutter.utils import create_env_with_context

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# Not moto's default 123456789012, so a test passes only if the real account is read.
MOTO_ACCOUNT_ID = "210987654321"


def resolved_answers(**overrides: str) -> dict:
    """The answers exactly as `cookiecutter --no-input key=value...` hands them to the hooks,
    with the templated defaults (project_slug, role_arn, ...) filled in."""
    context = generate_context(str(TEMPLATE_DIR / "cookiecutter.json"), extra_context=overrides)
    return dict(prompt_for_config(context, no_input=True))


def render_hook(answers: dict) -> str:
    """The pre-generation hook as cookiecutter writes it out before running it
    (cookiecutter.hooks.run_script_with_context)."""
    context = {"cookiecutter": answers}
    hook = (TEMPLATE_DIR / "hooks" / "pre_gen_project.py").read_text()
    return create_env_with_context(context).from_string(hook).render(**context)


def free_port() -> int:
    """A port nothing listens on (the socket is closed again): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment_without_aws(aws_files: Path, **extra: str) -> dict[str, str]:
    """os.environ minus every AWS_* variable, with empty AWS config and credentials files,
    so nothing of the developer's AWS setup (profile, keys, SSO, instance role) is used."""
    aws_files.mkdir(parents=True, exist_ok=True)
    for name in ("config", "credentials"):
        (aws_files / name).touch()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(aws_files / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws_files / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env
