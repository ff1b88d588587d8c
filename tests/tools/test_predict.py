"""smt predict (smt/predict.py) in-process: against a SageMaker endpoint (the moto server
answers InvokeEndpoint with the predictions it is given, and records each request), and
against the image's server, container/serving.py, on localhost with a stub model."""

import json
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
import pytest
from helpers import TEMPLATE_DIR, free_port, project_module, request_body

ENDPOINT = "digits-endpoint"
INVOKE = f"/endpoints/{ENDPOINT}/invocations"


@pytest.fixture
def test_channel(project_dir):
    """A test channel of 6 images as make data writes them (0..255): the label's row lit."""
    y = np.array([3, 1, 4, 1, 5, 2], "uint8")
    x = np.full((6, 8, 8), 7, "uint8")
    x[np.arange(6), y, :] = 255
    np.savez(project_dir / "data" / "test" / "data.npz", x=x, y=y)
    return x, y


def answer_with(moto, *predictions) -> None:
    """The bodies the moto server's endpoints answer InvokeEndpoint with, in turn."""
    results = [{"Body": json.dumps({"predictions": [p]}), "ContentType": "application/json"}
               for p in predictions]  # fmt: skip
    body = {"account_id": moto.account_id, "region": moto.region, "results": results}
    request = urllib.request.Request(moto.url + "/moto-api/static/sagemaker/endpoint-results",
                                     data=json.dumps(body).encode(), method="POST")  # fmt: skip
    urllib.request.urlopen(request, timeout=5)


def test_predict_sends_the_test_images_as_stored_to_the_endpoint_in_tf_servings_json(
    smt, aws, test_channel
):
    x, _ = test_channel  # labels 3, 1, 4
    answer_with(aws, *(np.eye(10)[label].tolist() for label in (3, 3, 4)))

    done = smt("predict", "--endpoint", ENDPOINT, "--n", "3")

    assert done.code == 0, done.err
    assert f"sending 3 examples of data/test to endpoint {ENDPOINT}" in done.out
    assert "accuracy: 0.6667 (2 of 3 right)" in done.out
    assert "      1          3      1  (wrong)" in done.out
    assert "latency: p50 " in done.out
    invocations = [r for r in aws.recorded_requests() if INVOKE in r["url"]]
    assert len(invocations) == 3
    for image, request in zip(x, invocations, strict=False):
        assert request["method"] == "POST"
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["headers"]["Accept"] == "application/json"
        assert json.loads(request_body(request)) == {"instances": [image.tolist()]}  # 0..255


def test_predict_without_a_server_says_how_to_start_one(smt, test_channel):
    port = free_port()

    done = smt("predict", "--serve-port", str(port))

    assert done.code == 1
    assert done.err.splitlines() == [
        f"error: nothing answers on localhost:{port} (Connection refused); "
        "start the server first: make serve-local"
    ]


def test_predict_without_a_test_channel_says_how_to_make_one(smt, project_dir):
    (project_dir / "data" / "test" / "data.npz").unlink()

    done = smt("predict")

    assert done.code == 1
    test = project_dir / "data" / "test"
    assert done.err.splitlines() == [f"error: DATA_DIR: no .npz files in {test}; run make data"]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def local_server(monkeypatch):
    """serving.py's app on a free port of localhost, as make serve-local serves it; its model
    a stub that scores each of the 8 rows of an image by its sum. Yields the port and the
    shape the model takes, to change."""
    serving_module = project_module(TEMPLATE_DIR / "{{cookiecutter.project_slug}}",
                                    "container/serving.py")  # without a model  # fmt: skip
    shape = {"images": (np.float32, (None, 8, 8))}
    model = serving_module.Signature(shape, lambda a: {"scores": a["images"].sum(axis=2)})
    monkeypatch.setattr(serving_module, "SIGNATURES", {"serving_default": model})
    server = make_server("127.0.0.1", free_port(), serving_module.app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port, shape
    server.shutdown()
    server.server_close()


def test_predict_against_the_images_server_reports_the_accuracy_of_its_answers(
    smt, test_channel, local_server
):
    port, _ = local_server

    done = smt("predict", "--serve-port", str(port))

    assert done.code == 0, done.err
    assert done.out.splitlines()[:3] == [
        f"sending 6 examples of data/test to http://localhost:{port}/invocations, one a request",
        "accuracy: 1.0000 (6 of 6 right)",
        "example  predicted  label",
    ]


def test_predict_says_in_one_line_why_the_server_refused(smt, test_channel, local_server):
    port, shape = local_server
    shape["images"] = (np.float32, (None, 28, 28))

    done = smt("predict", "--serve-port", str(port))

    assert done.code == 1
    assert done.err.splitlines()[-1] == (  # after the server's own log line
        "error: the server answered 400: input 'images' has shape (1, 8, 8); "
        "the model takes (None, 28, 28)"
    )
