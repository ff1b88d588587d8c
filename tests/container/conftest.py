"""The image's own plumbing (code/sagemaker_runtime.py, container/) stays in the generated
project, beside the user's code; its tests are the template's. They import it from the
template's project folder (those files hold no Jinja), with the project's own fixtures."""

import importlib.util
import sys

from helpers import TEMPLATE_DIR

PROJECT = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
sys.path.insert(0, str(PROJECT / "code"))
_spec = importlib.util.spec_from_file_location(
    "project_conftest", PROJECT / "tests" / "conftest.py"
)
project_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(project_conftest)
opt_ml = project_conftest.opt_ml  # /opt/ml in a temporary folder, as in the project's tests
