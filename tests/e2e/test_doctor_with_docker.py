"""make doctor with a real Docker engine and a moto server: a ready setup passes every
check and exits 0; a short disk and a wrong build platform fail with their fixes."""

import pytest
from helpers import doctor_report, run_doctor, seed_ready_account


@pytest.fixture
def project(bake, moto, docker_engine):
    baked = bake({"aws_checks": "skip", "aws_account_id": moto.account_id})
    assert baked.returncode == 0, baked.stderr
    return next(baked.output_dir.iterdir())


def test_a_ready_machine_and_account_pass_every_check_and_doctor_exits_0(project, moto):
    seed_ready_account(moto, project)
    done = run_doctor(project, moto.env())
    assert done.returncode == 0, done.stdout + done.stderr
    report = doctor_report(done.stdout)
    assert sorted(report) == sorted(
        ["docker", "compose", "architecture", "disk", "builds"]
        + ["credentials", "ecr-repository", "ecr-image", "role", "s3-output"]
    )
    assert all(line.startswith("OK ") for line in report.values()), report
    assert done.stdout.rstrip().splitlines()[-1] == "doctor: 0 FAIL, 0 WARN, 10 OK"
    assert report["builds"].startswith("OK build works here; build-remote needs its CodeBuild")
    # the compose the SDK's local mode will pick (here Debian's docker-compose v1)
    assert report["compose"].startswith(("OK docker compose v", "OK docker-compose 1."))


def test_too_little_free_disk_for_a_build_fails_with_the_prune_command(project, moto):
    seed_ready_account(moto, project)
    done = run_doctor(project, moto.env(), MIN_FREE_GB="1000000")
    assert done.returncode != 0
    disk = doctor_report(done.stdout)["disk"]
    assert disk.startswith("FAIL ") and "a build needs about 1e+06 GB" in disk
    assert disk.endswith(
        "-> fix: docker system prune (removes stopped containers, unused images and build cache)"
    )


def test_an_image_platform_sagemaker_cannot_run_fails_with_the_build_that_fixes_it(project, moto):
    seed_ready_account(moto, project)
    done = run_doctor(project, moto.env(), PLATFORM="linux/arm64")
    assert done.returncode != 0
    assert doctor_report(done.stdout)["architecture"] == (
        "FAIL PLATFORM=linux/arm64, but SageMaker training instances run linux/amd64 "
        "-> fix: make build PLATFORM=linux/amd64"
    )
