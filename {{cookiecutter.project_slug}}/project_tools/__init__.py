"""Plumbing for this project's commands on your machine: you need not open it. What you
edit is code/train.py, code/job_contract.py, scripts/prepare_data.py, run_estimator.py and
the Makefile's settings (README: "Where to change what")."""
