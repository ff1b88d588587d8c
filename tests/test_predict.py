"""make predict (project_tools/predict.py) against a SageMaker endpoint (ENDPOINT=): the moto
server answers InvokeEndpoint with the predictions it is given, and records each request;
and the one-line errors of make predict and make serve-local where nothing needs Docker.
Serving itself, on a real container, is in e2e/test_serving.py."""

import json
import urllib.request

import botocore.session
import numpy as np
import pytest
from helpers import bake_with_data, free_port, make_with_test_venv, project_module, request_body

ENDPOINT = "digits-endpoint"
INVOKE = "/endpoints/digits-endpoint/invocations"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project with a test channel of 4 examples: blank 8x8 images labelled 0."""
    return bake_with_data(tmp_path_factory.mktemp("bake"))


def answer_with(moto, *predictions) -> None:
    """The bodies the moto server's endpoints answer InvokeEndpoint with, in turn."""
    results = [{"Body": json.dumps({"predictions": [p]}), "ContentType": "application/json"}
               for p in predictions]  # fmt: skip
    request = urllib.request.Request(
        moto.url + "/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps(
            {"account_id": moto.account_id, "region": moto.region, "results": results}
        ).encode(),  # fmt: skip
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5)


def predict(project, env, **settings):
    return make_with_test_venv(project, "predict", ".installed-tools", env, **settings)


def test_predict_sends_the_test_examples_to_the_endpoint_in_tf_servings_json(project, moto):
    answer_with(moto, [0.9] + [0.0] * 9)
    done = predict(project, moto.env(), ENDPOINT=ENDPOINT, N=3)
    assert done.returncode == 0, done.stderr
    assert f"sending 3 examples of data/test to endpoint {ENDPOINT}" in done.stdout
    assert "accuracy: 1.0000 (3 of 3 right)" in done.stdout
    assert "      2          0      0" in done.stdout
    assert "latency: p50 " in done.stdout
    invocations = [r for r in moto.recorded_requests() if INVOKE in r["url"]]
    assert len(invocations) == 3
    for request in invocations:
        assert request["method"] == "POST"
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["headers"]["Accept"] == "application/json"
        assert json.loads(request_body(request)) == {"instances": [np.zeros((8, 8)).tolist()]}


def test_a_wrong_answer_counts_against_the_accuracy(project, moto):
    answer_with(moto, [0.0] * 9 + [0.9])
    done = predict(project, moto.env(), ENDPOINT=ENDPOINT, N=2)
    assert "accuracy: 0.0000 (0 of 2 right)" in done.stdout, done.stdout + done.stderr
    assert "      0          9      0  (wrong)" in done.stdout


def test_predict_without_a_server_says_how_to_start_one(project, moto):
    port = free_port()
    done = predict(project, moto.env(), SERVE_PORT=port)
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == (
        f"error: nothing answers on localhost:{port} (Connection refused); "
        "start the server first: make serve-local"
    ), done.stderr


def test_the_servers_payload_limit_is_sagemakers(project):
    """container/serving.py refuses what InvokeEndpoint could not carry, and no less."""
    serving = project_module(project, "container/serving.py")  # no model: TensorFlow unloaded
    service = botocore.session.get_session().get_service_model("sagemaker-runtime")
    assert serving.MAX_BODY == service.shape_for("BodyBlob").metadata["max"]
    assert serving.SIGNATURE is None and "no model at /opt/ml/model/1" in serving.PROBLEM
