"""Serving what was trained, on real engines: the image's `serve` as SageMaker starts it
(`docker run IMAGE serve`, the model at /opt/ml/model), its answers in TF Serving's two
formats to the images as stored (the model scales them), a few bad requests (all of them, with
a stub model: container/test_serving_api.py), under load and through SIGTERM; then make
serve-local and make predict."""

import io
import json
import re
import threading
import time

import numpy as np
import pytest
from engines import http_call, load, make, run, serving, started
from helpers import free_port

JSON, NPY = "application/json", "application/x-npy"
LIMIT = 6 * 1024 * 1024  # SageMaker's real-time payload limit


@pytest.fixture(scope="module")
def server(trained):
    with serving(trained["image"], trained["model"]) as s:
        yield s


def as_json(x) -> bytes:
    return json.dumps({"instances": x.tolist()}).encode()


def as_npy(x) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, x, allow_pickle=False)
    return buffer.getvalue()


def scores_of(content_type: str, body: bytes) -> np.ndarray:
    if content_type == NPY:
        return np.load(io.BytesIO(body), allow_pickle=False)
    return np.asarray(json.loads(body)["predictions"])


def test_ping_answers_200_once_the_model_is_loaded(server):
    assert server.ping() == (200, b"{}")


@pytest.mark.parametrize(
    "content_type, accept",
    [(JSON, JSON), (JSON, None), (NPY, NPY), (NPY, JSON), (JSON, f"text/html, {NPY};q=0.9")],
)
def test_predictions_score_the_test_split_as_train_py_did(server, trained, content_type, accept):
    body = as_json(trained["x"]) if content_type == JSON else as_npy(trained["x"])
    status, answered, answer = server.invoke(body, content_type, accept)
    assert status == 200, answer[:300]
    assert answered == (accept or JSON).split(",")[-1].split(";")[0].strip()
    scores = scores_of(answered, answer)
    assert scores.shape == (len(trained["y"]), 10)
    accuracy = float((scores.argmax(axis=1) == trained["y"]).mean())
    assert abs(accuracy - trained["accuracy"]) <= 0.01, (accuracy, trained["accuracy"])


@pytest.mark.parametrize(
    ("request_body", "key", "path"),
    [
        ({"signature_name": "serving_default", "instances": None}, "predictions", "/invocations"),
        ({"inputs": None}, "outputs", "/invocations"),
        ({"signature_name": "serving_default", "inputs": None}, "outputs",
         "/v1/models/model:predict"),
    ],
)  # fmt: skip
def test_tf_servings_row_and_column_formats_score_the_test_split_alike(
    server, trained, request_body, key, path
):
    """As a client of AWS's TensorFlow Serving image asks: the same scores either way."""
    request = {k: trained["x"].tolist() if v is None else v for k, v in request_body.items()}
    body = json.dumps(request).encode()
    status, kind, answer = http_call(server.port, "POST", path, body, {"Content-Type": JSON})
    assert (status, kind) == (200, JSON), answer[:300]
    scores = np.asarray(json.loads(answer)[key])
    accuracy = float((scores.argmax(axis=1) == trained["y"]).mean())
    assert abs(accuracy - trained["accuracy"]) <= 0.01, (accuracy, trained["accuracy"])


def pickled_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


GOOD = as_json(np.zeros((1, 8, 8), "float32"))


def bad(what, content_type, body, status, reason, accept=None, method="POST", path="/invocations"):
    """A bad request, what the server answers (status) and words its reason must have."""
    return pytest.param(method, path, content_type, accept, body, status, reason, id=what)


BAD_REQUESTS = [  # what the real model's signature, gunicorn or the container decides
    bad("the wrong shape", JSON, as_json(np.zeros((2, 28, 28))), 400,
        "has shape (2, 28, 28); the model takes (None, 8, 8)"),
    bad("text for numbers", JSON, b'{"instances": [["a", "b"]]}', 400, "must be numbers, not text"),
    bad("an unknown signature", JSON, b'{"signature_name": "x", "inputs": [1]}', 400,
        "no signature 'x'; it has ['serving_default']"),
    bad("a pickled .npy", NPY, pickled_npy(), 400, "not a .npy array"),
    bad("an unknown content type", "text/csv", b"1,2,3", 415, "'text/csv' is not application/json"),
    bad("an Accept it cannot write", JSON, GOOD, 406, "'text/csv' has neither", accept="text/csv"),
    bad("a body over 6 MiB", NPY, b"\0" * (LIMIT + 1), 413, f"the limit is {LIMIT}"),
    bad("an unknown path", JSON, GOOD, 404, "use GET /ping or POST /invocations", path="/predict"),
]  # fmt: skip


@pytest.mark.parametrize("method, path, content_type, accept, body, status, reason", BAD_REQUESTS)
def test_a_bad_request_gets_a_4xx_and_a_one_line_reason_and_serving_goes_on(
    server, method, path, content_type, accept, body, status, reason
):
    headers = {"Content-Type": content_type} if content_type is not None else {}
    headers.update({"Accept": accept} if accept else {})
    answered, kind, answer = http_call(server.port, method, path, body, headers)
    assert (answered, kind) == (status, JSON), answer[:300]
    error = json.loads(answer)["error"]
    assert reason in error and "\n" not in error, error
    good_status, _, good_answer = server.invoke(GOOD, JSON)
    assert good_status == 200 and len(json.loads(good_answer)["predictions"]) == 1


@pytest.mark.parametrize("model", ["missing", "unloadable"])
def test_without_a_loadable_model_ping_fails_with_the_reason(trained, tmp_path, model):
    folder = tmp_path / "model"
    folder.mkdir()
    if model == "unloadable":
        (folder / "1").mkdir()
        (folder / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    why = {"missing": "no model at /opt/ml/model/1", "unloadable": "cannot be loaded"}[model]
    with serving(trained["image"], folder) as server:
        status, body = server.ping()
        assert status == 503 and why in json.loads(body)["error"], body
        status, _, body = server.invoke(GOOD, JSON)
        assert status == 503 and why in json.loads(body)["error"], body


def test_the_port_workers_and_timeout_follow_sagemakers_settings(trained):
    settings = {"SAGEMAKER_BIND_TO_PORT": "9090", "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
                "SAGEMAKER_MODEL_SERVER_TIMEOUT": "17"}  # fmt: skip
    options = [arg for key, value in settings.items() for arg in ("-e", f"{key}={value}")]
    with serving(trained["image"], trained["model"], *options, inside=9090) as server:
        assert server.ping() == (200, b"{}")
        processes = run(["docker", "top", server.name, "-eo", "pid,args"]).stdout
        logs = server.logs()
    assert "serve: port 9090, 3 workers of 4 threads" in logs
    assert "Listening at: http://0.0.0.0:9090" in logs
    assert len(re.findall(r"Booting worker with pid", logs)) == 3, logs[-3000:]
    assert "--timeout 17 --graceful-timeout 17" in processes, processes


def test_a_bad_setting_stops_serve_with_one_line(trained):
    done = run(["docker", "run", "--rm", "-e", "SAGEMAKER_MODEL_SERVER_WORKERS=many",
                trained["image"], "serve"], check=False, timeout=120)  # fmt: skip
    assert done.returncode == 1
    assert done.stdout.strip() == (
        "error: SAGEMAKER_MODEL_SERVER_WORKERS='many' is not a whole number >= 1; "
        "set it to one, or unset it"
    )


def test_16_clients_get_512_answers_with_no_error_or_dropped_connection(server, trained):
    body = as_json(trained["x"][:1])
    result = load(server.port, body, {"Content-Type": JSON}, clients=16, requests=512)
    assert result["failures"] == [], result["failures"][:5]
    p50, p99 = np.percentile(np.asarray(result["latencies"]) * 1000, [50, 99])
    throughput = len(result["latencies"]) / result["seconds"]
    print(f"\nserving, 512 requests of 1 example from 16 clients: {throughput:.0f} requests/s, "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")  # fmt: skip


def test_on_sigterm_the_requests_in_flight_complete(trained):
    """16 requests of a large batch are in the server when it gets SIGTERM (docker stop's
    signal, passed on by tini to every process): each is answered in full, the server then
    exits by itself, and it takes no new request."""
    batch = np.repeat(trained["x"][:1], 3000, axis=0)
    body, clients = as_json(batch), 16
    sent, answers = threading.Barrier(clients + 1), []
    with serving(trained["image"], trained["model"]) as server:

        def client():
            import http.client

            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
            connection.request("POST", "/invocations", body, {"Content-Type": JSON})
            sent.wait()
            try:
                answer = connection.getresponse()
                answers.append((answer.status, len(json.loads(answer.read())["predictions"])))
            except Exception as error:  # a dropped request
                answers.append((repr(error), 0))

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        sent.wait(timeout=60)
        time.sleep(0.5)  # the workers accept the connections
        run(["docker", "kill", "--signal", "TERM", server.name])
        for thread in threads:
            thread.join(timeout=300)
        exit_code = run(["docker", "wait", server.name], timeout=120).stdout.strip()
        logs = server.logs()
        with pytest.raises(OSError):
            server.ping()
    assert answers == [(200, len(batch))] * clients, answers
    assert exit_code == "0", logs[-3000:]
    assert "Handling signal: term" in logs and "Shutting down: Master" in logs, logs[-3000:]


def test_serve_local_serves_the_newest_run_and_predict_reports_on_it(project, trained, tmp_path):
    port, log = free_port(), tmp_path / "serve-local.log"
    settings = {**project["settings"], "SERVE_PORT": str(port)}
    with started(project["path"], "serve-local", log, "ready: ", env=project["env"], **settings):
        assert f"at http://localhost:{port}" in log.read_text()
        done = make(project["path"], "predict", env=project["env"], N=100, SERVE_PORT=port,
                    VENV=project["settings"]["VENV"])  # only what predict reads  # fmt: skip
        accuracy = float(
            re.search(r"^accuracy: ([\d.]+) \(\d+ of 100 right\)", done.stdout, re.M)[1]
        )
        assert accuracy > 0.8, done.stdout
        assert re.search(r"^latency: p50 [\d.]+ ms, p99 [\d.]+ ms", done.stdout, re.M), done.stdout
        assert len(re.findall(r"^ +\d+ +\d +\d", done.stdout, re.M)) == 5, done.stdout
    # make itself ends by the SIGINT, as in a terminal; serve-local has cleaned up first
    assert f"stopped; container scale-out-serve-{port} removed" in log.read_text()
    left = run(["docker", "ps", "-aq", "--filter", f"name=-serve-{port}$"]).stdout.split()
    assert left == [], log.read_text()[-3000:]
