"""sm-template-tools: the host side of a project made from the sm-template cookiecutter.

A project keeps what its user owns (code/, scripts/prepare_data.py, run_estimator.py, the
Dockerfile, settings.env) and runs everything else through this package's CLI, `smt`, which
its Makefile calls. The version is the template repository's: a project pins it exactly.
"""

__version__ = "0.19.0"
