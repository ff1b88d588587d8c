"""make build, login and push on a real Docker engine, a registry on localhost (with the
password of this account's ECR token, as ECR) and the moto server that hands out the token."""

import json
import subprocess

import pytest
from engines import SINGLE_IMAGE, bake, make, pushed_manifest_type, registry_tags, run
from helpers import make_setting

REPOSITORY = "image-e2e"


@pytest.fixture(scope="module")
def built(tmp_path_factory, moto_server, base_image, registry, shared_venv):
    """A project in git, its image built once by make build."""
    moto_server.reset()
    env = moto_server.env(HOME=str(tmp_path_factory.mktemp("home")),
                          PATH=f"{shared_venv}/bin:{moto_server.env()['PATH']}")  # fmt: skip
    out = tmp_path_factory.mktemp("bake")
    bake(out, env, project_name="Image E2E", aws_account_id=moto_server.account_id,
         ecr_repository=REPOSITORY, aws_checks="skip")  # fmt: skip
    project = out / "image_e2e"
    with (project / "settings.env").open("a") as file:  # as a user sets it for good
        file.write(f"BASE_IMAGE = {base_image}\n")
    identity = ["-c", "user.name=e2e", "-c", "user.email=e2e@example.com"]
    for git in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-qm", "baked"]):
        run(["git", *git], cwd=project)
    settings = {"VENV": shared_venv}
    # The same inputs made the same tag in an earlier run: remove those images (keeping their
    # layers as a cache) so that this build labels an image with this checkout's commit.
    listed = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY])
    for old in listed.stdout.split():
        remove_keeping_layers(old)
    done = make(project, "build", env=env, timeout=2400, **settings)
    yield {"project": project, "env": env, "settings": settings, "registry": registry,
           "base_image": base_image, "output": done.stdout}  # fmt: skip
    pushed = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                  f"{registry}/{REPOSITORY}"])  # fmt: skip
    for name in pushed.stdout.split():  # the names push gave the images: only names
        run(["docker", "rmi", "--no-prune", name])


def remove_keeping_layers(name: str) -> None:
    """docker rmi, but not the layers below: the classic builder makes an image of each
    --label, so the label steps above the last layer go too (none are left dangling)."""
    chain, image = [], name
    while image and "org.opencontainers.image.revision" in labels(image):
        chain.append(image)
        image = run(["docker", "image", "inspect", "-f", "{{.Parent}}", image]).stdout.strip()
    for step in chain:
        run(["docker", "rmi", "--no-prune", step])


def pushing(built) -> dict[str, str]:
    """The settings of make login and push: to the registry on localhost."""
    return {**built["settings"], "REGISTRY": built["registry"]}


def errors(done) -> list[str]:
    """smt's error lines (make adds its own after them)."""
    return [line for line in done.stdout.splitlines() if line.startswith("error: ")]


def image(built) -> str:
    return f"{REPOSITORY}:{make_setting(built['project'], 'IMAGE_TAG', **built['settings'])}"


def labels(name: str) -> dict[str, str]:
    inspected = run(["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", name])
    return json.loads(inspected.stdout) or {}


def git(built, *args: str) -> str:
    return run(["git", *args], cwd=built["project"]).stdout.strip()


def test_the_built_image_is_labelled_with_the_commit_it_was_built_from_and_a_clean_tree(built):
    name = image(built)
    assert f"building {name} from {built['base_image']}" in built["output"]
    commit = git(built, "rev-parse", "--short=12", "HEAD")
    assert {
        key: value
        for key, value in labels(name).items()
        if "sm-template" in key or key.startswith("org.opencontainers")
    } == {  # fmt: skip
        "org.opencontainers.image.revision": commit,
        "sm-template.git-dirty": "False",
    }


def test_an_uncommitted_code_edit_builds_a_new_tag_labelled_dirty(built):
    before = image(built)
    train = built["project"] / "code" / "train.py"
    original = train.read_text()
    train.write_text(original + "\n# an uncommitted edit\n")
    try:
        after = image(built)
        assert after != before
        make(built["project"], "build", env=built["env"], **built["settings"])
        assert labels(after)["sm-template.git-dirty"] == "True"
    finally:
        train.write_text(original)
    assert image(built) == before  # the same inputs, the same tag again


def test_provenance_is_turned_off_exactly_where_this_engines_docker_build_offers_it(built):
    """The classic builder refuses --provenance (the build above would have failed); BuildKit
    takes it, and without it would push an index with an attestation, which SageMaker
    refuses: both ways, what lands in the registry is a single image."""
    offered = "--provenance" in run(["docker", "build", "--help"]).stdout
    make(built["project"], "login", "push", env=built["env"], **pushing(built))
    tag = image(built).split(":", 1)[1]
    manifest = pushed_manifest_type(built["registry"], REPOSITORY, tag)
    assert manifest in SINGLE_IMAGE, (offered, manifest)


def test_push_is_refused_before_login_and_puts_the_content_tag_in_the_registry_after(
    built, tmp_path
):
    fresh = {**built["env"], "HOME": str(tmp_path)}  # no docker login of the module's yet
    refused = make(built["project"], "push", env=fresh, check=False, **pushing(built))
    assert refused.returncode != 0
    assert "no basic auth credentials" in refused.stdout  # Docker's words: the registry asked
    assert errors(refused)[0].startswith("error: docker push ")
    done = make(built["project"], "login", "push", env=fresh, **pushing(built))
    assert "Login Succeeded" in done.stdout
    tag = image(built).split(":", 1)[1]
    assert tag in registry_tags(built["registry"], REPOSITORY)


def test_login_fails_with_the_aws_clis_reason_when_the_token_cannot_be_had(built):
    env = {**built["env"], "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # nothing listens there
    done = make(built["project"], "login", env=env, check=False, **pushing(built))
    assert done.returncode != 0
    [error] = errors(done)
    assert error.startswith("error: aws ecr get-login-password failed (")
    assert 'Could not connect to the endpoint URL: "http://127.0.0.1:9/"' in error


def test_login_to_a_registry_that_refuses_the_token_fails_with_dockers_reason(
    built, another_accounts_registry
):
    settings = {**built["settings"], "REGISTRY": another_accounts_registry}
    done = make(built["project"], "login", env=built["env"], check=False, **settings)
    assert done.returncode != 0
    assert "Login Succeeded" not in done.stdout
    assert (
        f"login attempt to http://{another_accounts_registry}/v2/ failed with status: "
        "401 Unauthorized" in done.stdout
    )
    assert errors(done) == [
        f"error: docker login {another_accounts_registry} failed (docker said why above)"
    ]


def test_the_image_runs_as_sagemaker_starts_it(built):
    """The labels and the content tag change nothing of what runs: train is the command."""
    config = json.loads(run(["docker", "image", "inspect", "-f", "{{json .Config}}",
                             image(built)]).stdout)  # fmt: skip
    assert config["Cmd"] == ["train"] and "SAGEMAKER_PROGRAM=train.py" in config["Env"]
    arch = subprocess.run(["docker", "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}",
                           image(built)], capture_output=True, text=True)  # fmt: skip
    assert arch.stdout.strip() == "linux/amd64"


def installed_distributions(name: str) -> set[str]:
    """The distributions installed in the image's virtualenv, as pip names them."""
    listing = ("import importlib.metadata as m, re; print(*{re.sub(r'[-_.]+', '-', "
               "d.metadata['Name']).lower() for d in m.distributions()})")  # fmt: skip
    done = run(["docker", "run", "--rm", "--entrypoint", "python", name, "-c", listing])
    return set(done.stdout.split())


def test_the_cpu_image_has_tensorflow_once_for_cpu_and_nothing_that_no_run_imports(built):
    """Every host pulls the whole image. `tensorflow` next to tensorflow-cpu would be the
    same TensorFlow twice; what the Dockerfile leaves out must stay out (the entry point and
    serving tests show that train and serve run without it)."""
    installed = installed_distributions(image(built))
    assert {"tensorflow-cpu", "tf-keras", "sagemaker-training", "gunicorn", "pip"} <= installed
    left_out = {"tensorflow", "keras", "libclang", "scipy", "rich", "optree", "namex"}
    assert installed & left_out == set()


def test_the_cpu_image_is_at_most_1_6_gb(built):
    size = run(["docker", "image", "inspect", "-f", "{{.Size}}", image(built)]).stdout
    assert int(size) <= 1.6e9, f"{int(size) / 1e9:.2f} GB"
