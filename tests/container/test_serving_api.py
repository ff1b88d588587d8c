"""The image's server, container/serving.py, called as gunicorn calls it (a WSGI app) with stub
models in place of TensorFlow: TensorFlow Serving's REST predict API in both of its formats,
as TF Serving's documentation writes its examples, and every bad request in one line.
The same app on a real container and a real SavedModel: e2e/test_serving.py."""

import base64
import io
import json

import botocore.session
import numpy as np
import pytest
from helpers import TEMPLATE_DIR, project_module

JSON, NPY = "application/json", "application/x-npy"
LIMIT = 6 * 1024 * 1024  # SageMaker's real-time payload limit


@pytest.fixture(scope="module")
def module():
    """container/serving.py, loaded without a model (TensorFlow unloaded)."""
    return project_module(TEMPLATE_DIR / "{{cookiecutter.project_slug}}", "container/serving.py")


@pytest.fixture
def serving(module, monkeypatch):
    """The app serving stub models: serving_default takes 8x8 images and scores each row by
    its sum; "docs" takes the inputs of TF Serving's own examples (tag, signal, sensor);
    "bytes" takes binary values and answers their size and the values back."""
    S = module.Signature
    signatures = {
        "serving_default": S({"images": (np.float32, (None, 8, 8))},
                             lambda a: {"scores": a["images"].sum(axis=2)}),
        "docs": S({"tag": (object, (None,)), "signal": (np.int64, (None, 5)),
                   "sensor": (np.float32, (None, 2, 2))},
                  lambda a: {"tag": a["tag"], "signal_sum": a["signal"].sum(axis=1),
                             "sensor_max": a["sensor"].max(axis=(1, 2))}),
        "bytes": S({"image_bytes": (object, (None,))},
                   lambda a: {"size": np.vectorize(len)(a["image_bytes"]),
                              "echo_bytes": a["image_bytes"]}),
    }  # fmt: skip
    monkeypatch.setattr(module, "SIGNATURES", signatures)
    monkeypatch.setattr(module, "PROBLEM", None)
    return module


def call(serving, body=b"", content_type=JSON, accept=None, method="POST", path="/invocations"):
    """(status, content type, body) of one request to the app."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body))}  # fmt: skip
    environ.update({"CONTENT_TYPE": content_type} if content_type else {})
    environ.update({"HTTP_ACCEPT": accept} if accept else {})
    started = {}
    answer = b"".join(serving.app(environ, lambda status, headers: started.update(
        status=int(status.split()[0]), headers=dict(headers))))  # fmt: skip
    assert started["headers"]["Content-Length"] == str(len(answer))
    return started["status"], started["headers"]["Content-Type"], answer


def ask(serving, request: dict, **options) -> dict:
    status, kind, answer = call(serving, json.dumps(request).encode(), **options)
    assert (status, kind) == (200, JSON), answer
    return json.loads(answer)


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


IMAGES = np.arange(2 * 64).reshape(2, 8, 8)  # raw values, as the channel stores them
SCORES = IMAGES.sum(axis=2).tolist()
# TF Serving's REST API guide, "Specifying input tensors in row format" and "in column format"
ROWS = {"signature_name": "docs", "instances": [
    {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
    {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]}]}  # fmt: skip
COLUMNS = {"signature_name": "docs", "inputs": {
    "tag": ["foo", "bar"], "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
    "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]]}}  # fmt: skip


@pytest.mark.parametrize("path", ["/invocations", "/v1/models/model:predict",
                                  "/v1/models/mnist/versions/1:predict"])  # fmt: skip
def test_rows_in_instances_are_answered_as_predictions_a_list_for_a_model_of_one_output(
    serving, path
):
    assert ask(serving, {"instances": IMAGES.tolist()}, path=path) == {"predictions": SCORES}


def test_columns_in_inputs_are_answered_as_outputs_for_a_model_of_one_output(serving):
    assert ask(serving, {"inputs": IMAGES.tolist()}) == {"outputs": SCORES}
    assert ask(serving, {"inputs": {"images": IMAGES.tolist()}}) == {"outputs": SCORES}


def test_signature_name_picks_the_signature_and_several_inputs_and_outputs_go_by_name(serving):
    assert ask(serving, ROWS) == {"predictions": [
        {"tag": "foo", "signal_sum": 15, "sensor_max": 4.0},
        {"tag": "bar", "signal_sum": 15, "sensor_max": 8.0}]}  # fmt: skip
    columns = {"tag": ["foo", "bar"], "signal_sum": [15, 15], "sensor_max": [4.0, 8.0]}
    assert ask(serving, COLUMNS) == {"outputs": columns}


def test_an_instance_may_name_the_one_input_of_a_model(serving):
    named = [{"images": image} for image in IMAGES.tolist()]
    assert ask(serving, {"instances": named}) == {"predictions": SCORES}


def test_binary_values_go_in_b64_objects_and_come_back_so_from_an_output_named_bytes(serving):
    raw = [b"\x89PNG\x00", b"\xff\xd8"]
    encoded = [{"b64": base64.b64encode(value).decode()} for value in raw]
    rows = ask(serving, {"signature_name": "bytes", "instances": encoded})
    assert rows == {"predictions": [{"size": 5, "echo_bytes": encoded[0]},
                                    {"size": 2, "echo_bytes": encoded[1]}]}  # fmt: skip
    columns = ask(serving, {"signature_name": "bytes", "inputs": encoded})
    assert columns == {"outputs": {"size": [5, 2], "echo_bytes": encoded}}


@pytest.mark.parametrize(("accept", "answered"), [(None, JSON), (JSON, JSON), (NPY, NPY),
                                                  (f"text/html, {NPY};q=0.9", NPY)])  # fmt: skip
@pytest.mark.parametrize("sent", [JSON, NPY])
def test_a_batch_in_npy_or_json_is_answered_in_the_type_accept_asks_for(
    serving, sent, accept, answered
):
    body = npy(IMAGES) if sent == NPY else json.dumps({"instances": IMAGES.tolist()}).encode()
    status, kind, answer = call(serving, body, sent, accept)
    assert (status, kind) == (200, answered)
    scores = np.load(io.BytesIO(answer)) if kind == NPY else json.loads(answer)["predictions"]
    assert np.asarray(scores).tolist() == SCORES


def pickled_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


GOOD = json.dumps({"instances": IMAGES.tolist()}).encode()


def bad(what, body, status, reason, content_type=JSON, accept=None, method="POST",
        path="/invocations"):  # fmt: skip
    """A bad request, the status it gets and words its reason must have."""
    return pytest.param(body, content_type, accept, method, path, status, reason, id=what)


def as_json(request) -> bytes:
    return json.dumps(request).encode()


BAD_REQUESTS = [
    bad("an unknown content type", b"1,2,3", 415, "'text/csv' is not application/json",
        content_type="text/csv"),
    bad("no content type", GOOD, 415, "'' is not application/json", content_type=None),
    bad("an empty JSON body", b"", 400, "body is empty"),
    bad("an empty .npy body", b"", 400, "body is empty", content_type=NPY),
    bad("JSON that does not parse", b"{[", 400, "not JSON"),
    bad("neither instances nor inputs", b'{"images": []}', 400,
        'one of {"instances": [...]} (rows) or {"inputs": ...} (columns)'),
    bad("both instances and inputs", b'{"instances": [], "inputs": []}', 400,
        'one of {"instances": [...]} (rows) or {"inputs": ...} (columns)'),
    bad("instances not a list", b'{"instances": 3}', 400, '"instances" must be a list'),
    bad("an unknown signature", as_json({"signature_name": "nope", "instances": []}), 400,
        "no signature 'nope'; it has ['bytes', 'docs', 'serving_default']"),
    bad("the wrong shape", as_json({"instances": np.zeros((2, 28, 28)).tolist()}), 400,
        "has shape (2, 28, 28); the model takes (None, 8, 8)"),
    bad("no instances at all", b'{"instances": []}', 400, "has shape (0,)"),
    bad("text for numbers", b'{"instances": [["a", "b"]]}', 400, "must be numbers, not text"),
    bad("rows of different lengths", b'{"instances": [[1], [1, 2]]}', 400, "differ in shape"),
    bad("an instance without an input", as_json({"signature_name": "docs", "instances": [
        {"tag": "foo", "signal": [1, 2, 3, 4, 5]}]}), 400, "lacks the inputs ['sensor']"),
    bad("rows of values for several inputs", as_json({"signature_name": "docs",
        "instances": [[1, 2]]}), 400, "the model takes the inputs ['tag', 'signal', 'sensor']"),
    bad("columns without an input", as_json({"signature_name": "docs", "inputs": {"tag": []}}),
        400, "lacks the inputs ['signal', 'sensor']"),
    bad("a body that is not .npy", b"not an array", 400, "not a .npy array", content_type=NPY),
    bad("a pickled .npy", pickled_npy(), 400, "not a .npy array", content_type=NPY),
    bad("the wrong .npy shape", npy(np.zeros((3, 64))), 400, "has shape (3, 64)",
        content_type=NPY),
    bad("an Accept it cannot write", GOOD, 406, "'text/csv' has neither", accept="text/csv"),
    bad("a body over 6 MiB", b"\0" * (LIMIT + 1), 413, f"the limit is {LIMIT}", content_type=NPY),
    bad("GET of /invocations", b"", 405, "POST a batch", method="GET"),
    bad("an unknown path", GOOD, 404, "use GET /ping or POST /invocations", path="/predict"),
]  # fmt: skip


@pytest.mark.parametrize("body, content_type, accept, method, path, status, reason", BAD_REQUESTS)
def test_a_bad_request_gets_its_4xx_and_the_reason_in_one_line_as_tf_serving_writes_errors(
    serving, body, content_type, accept, method, path, status, reason
):
    answered, kind, answer = call(serving, body, content_type, accept, method, path)
    assert (answered, kind) == (status, JSON), answer[:300]
    assert list(json.loads(answer)) == ["error"]
    error = json.loads(answer)["error"]
    assert reason in error and "\n" not in error, error


def test_a_body_larger_than_its_content_length_says_is_refused_too(serving):
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/invocations", "CONTENT_TYPE": NPY,
               "wsgi.input": io.BytesIO(b"\0" * (LIMIT + 10))}  # no length: chunked  # fmt: skip
    statuses = []
    [answer] = serving.app(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["413 Payload Too Large"] and b"over the limit" in answer


def test_without_a_model_ping_and_invocations_answer_503_with_the_reason(module):
    assert module.SIGNATURES is None
    for path, method in [("/ping", "GET"), ("/invocations", "POST")]:
        status, _, answer = call(module, GOOD, method=method, path=path)
        assert status == 503
        assert "no model at /opt/ml/model/1" in json.loads(answer)["error"]


def test_the_servers_payload_limit_is_sagemakers(module):
    """The server refuses what InvokeEndpoint could not carry, and no less."""
    service = botocore.session.get_session().get_service_model("sagemaker-runtime")
    assert module.MAX_BODY == service.shape_for("BodyBlob").metadata["max"] == LIMIT
