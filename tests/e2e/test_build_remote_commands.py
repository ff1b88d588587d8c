"""make build-remote's buildspec (infra/buildspec.yml), its commands run for real in a shell
here: in the build context smt uploads (unzipped as CodeBuild does), with the variables smt
passes, against the test registry in ECR's place. The CodeBuild calls are tested on moto
(tests/tools/test_build_remote.py).

This engine is Debian's docker.io 20.10 without the buildx plugin (Debian 12 has no package of
it): `docker build` is the classic builder, which knows no --provenance and makes no
attestations, so the buildspec leaves the flag out here, as make build does. CodeBuild's
standard image has buildx and gets --provenance=false; either way the tag must be a single
image, which SageMaker needs."""

import os

import yaml
from engines import SINGLE_IMAGE, Stopwatch, ecr_password, pushed_manifest_type, registry_tags, run
from helpers import MOTO_ACCOUNT_ID, bake_with_data
from smt import build_remote, project, settings

REPOSITORY = "mnist_on_sagemaker"


def test_the_buildspecs_commands_build_and_push_the_tag_make_build_gives(
    tmp_path, base_image, registry, monkeypatch
):
    baked = bake_with_data(tmp_path / "bake")
    monkeypatch.chdir(baked)
    project.root.cache_clear()
    given = {"CODEBUILD_PROJECT": "mnist-image", "REGISTRY": registry, "BASE_IMAGE": base_image}
    values = settings.derive(settings.load("build-remote", baked, given, environ={}))
    build_tag = settings.derive(settings.load("build", baked, given, environ={})).image_tag
    assert values.image_tag == build_tag
    source = tmp_path / "source"
    (tmp_path / "context.zip").write_bytes(build_remote.context_zip(baked))
    run(["unzip", "-q", str(tmp_path / "context.zip"), "-d", str(source)])
    spec = yaml.safe_load((baked / "infra/buildspec.yml").read_text())
    env = {**os.environ, **build_remote.variables(values), "DOCKER_CONFIG": str(tmp_path / "d")}
    # pre_build's login, with the test registry's password instead of ECR's
    run(["docker", "login", "--username", "AWS", "--password-stdin", registry],
        input=ecr_password(MOTO_ACCOUNT_ID), env=env)  # fmt: skip
    try:
        with Stopwatch("build-remote's buildspec commands, here"):
            script = "\n".join(spec["phases"]["build"]["commands"])
            run(["bash", "-euo", "pipefail", "-c", script], cwd=source, env=env, timeout=2400)
        assert values.image_tag in registry_tags(registry, REPOSITORY)
        assert pushed_manifest_type(registry, REPOSITORY, values.image_tag) in SINGLE_IMAGE
        labels = run(["docker", "image", "inspect", "-f", "{{json .Config.Labels}}",
                      values.remote_image]).stdout  # fmt: skip
        assert f'"org.opencontainers.image.revision":"{env["GIT_COMMIT"]}"' in labels
    finally:
        run(["docker", "rmi", "-f", values.remote_image], check=False)
        project.root.cache_clear()
