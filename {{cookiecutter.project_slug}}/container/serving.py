"""Plumbing: the HTTP app that `serve` runs (SageMaker's inference contract); need not be opened.

GET /ping: 200 once the model in /opt/ml/model/1 is loaded, else 503 and why.
POST /invocations: the SavedModel's serving_default signature applied to a batch, sent as
application/json in TensorFlow Serving's REST shape ({"instances": [...]} in,
{"predictions": [...]} out) or as application/x-npy (the SDK's NumPySerializer); the Accept
header picks JSON or .npy back. A bad request gets a 4xx and a one-line JSON reason.
Nothing here knows the model's layers: whatever train.py saves is served. Each gunicorn
worker imports this module, so each loads the model once.
"""

import io
import json
import os
import sys
import traceback

import numpy as np

MODEL_DIR = "/opt/ml/model/1"
MAX_BODY = 6 * 1024 * 1024  # SageMaker's real-time payload limit (InvokeEndpoint's Body)
JSON, NPY = "application/json", "application/x-npy"


class Refused(Exception):
    """A request we do not serve: its HTTP status and the reason, one line."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status


def load(model_dir: str = MODEL_DIR):
    """(the serving_default signature, None), or (None, why there is none)."""
    if not os.path.isdir(model_dir):
        return None, f"no model at {model_dir}: mount the folder holding 1/ at /opt/ml/model"
    try:
        import tensorflow as tf

        return tf.saved_model.load(model_dir).signatures["serving_default"], None
    except Exception as error:  # not a SavedModel, no serving_default, a TensorFlow error
        why = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        return None, f"the model at {model_dir} cannot be loaded ({why})"


SIGNATURE, PROBLEM = load()


def read_body(environ) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)  # unknown (chunked): read up to the limit
    if length > MAX_BODY:
        for _ in range(min(length, 8 * MAX_BODY) // 2**20):  # drained: the client reads why
            environ["wsgi.input"].read(2**20)
        raise Refused(
            "413 Payload Too Large", f"the body has {length} bytes; the limit is {MAX_BODY}"
        )
    body = environ["wsgi.input"].read(length or MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Refused("413 Payload Too Large", f"the body is over the limit of {MAX_BODY} bytes")
    if not body:
        raise Refused("400 Bad Request", "the body is empty; send a batch of inputs")
    return body


def inputs_of(body: bytes, content_type: str) -> dict:
    """The signature's inputs, by name, as arrays of their dtypes and shapes."""
    specs = SIGNATURE.structured_input_signature[1]
    if content_type == NPY:
        if len(specs) > 1:
            raise Refused("400 Bad Request", f"the model takes inputs {sorted(specs)}: send JSON")
        try:
            batches = {name: np.load(io.BytesIO(body), allow_pickle=False) for name in specs}
        except Exception as error:  # ValueError, EOFError, pickled objects
            raise Refused("400 Bad Request", f"the body is not a .npy array ({error})") from None
    elif content_type == JSON:
        try:
            instances = json.loads(body)["instances"]
        except (ValueError, TypeError, KeyError):
            raise Refused("400 Bad Request", 'send JSON of the form {"instances": [...]}') from None
        try:  # several inputs: each instance is an object of them, as TF Serving takes
            batches = (
                {name: [i[name] for i in instances] for name in specs}
                if len(specs) > 1
                else {name: instances for name in specs}
            )
        except (KeyError, TypeError):
            raise Refused(
                "400 Bad Request", f"each instance needs the inputs {sorted(specs)}"
            ) from None
    else:
        raise Refused(
            "415 Unsupported Media Type", f"Content-Type {content_type!r} is not {JSON} or {NPY}"
        )
    arrays = {}
    for name, spec in specs.items():
        try:
            array = np.asarray(batches[name])
        except ValueError:  # rows of different lengths
            raise Refused(
                "400 Bad Request", f"input {name!r}: the instances differ in shape"
            ) from None
        if array.dtype.kind not in "iuf":
            given = {"U": "text", "b": "true/false", "O": "mixed values"}.get(
                array.dtype.kind, array.dtype.name
            )
            raise Refused("400 Bad Request", f"input {name!r} must be numbers, not {given}")
        if not spec.shape.is_compatible_with(array.shape):
            want = tuple(spec.shape.as_list())
            raise Refused(
                "400 Bad Request", f"input {name!r} has shape {array.shape}; the model takes {want}"
            )
        arrays[name] = array.astype(spec.dtype.as_numpy_dtype)
    return arrays


def answer(outputs: dict, accept: str) -> tuple[str, bytes]:
    """(content type, body) of the predictions, in the first type of Accept we can write."""
    wanted = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    kind = next((t for t in wanted if t in (JSON, NPY, "*/*", "application/*")), None)
    if kind is None:
        raise Refused("406 Not Acceptable", f"Accept {accept!r} has neither {JSON} nor {NPY}")
    if kind == NPY:
        if len(outputs) > 1:
            raise Refused(
                "406 Not Acceptable", f"the model has outputs {sorted(outputs)}: accept JSON"
            )
        buffer = io.BytesIO()
        np.save(buffer, next(iter(outputs.values())), allow_pickle=False)
        return NPY, buffer.getvalue()
    if len(outputs) == 1:
        predictions = next(iter(outputs.values())).tolist()
    else:  # one object per instance, as TF Serving answers
        rows = len(next(iter(outputs.values())))
        predictions = [
            {name: array[i].tolist() for name, array in outputs.items()} for i in range(rows)
        ]
    return JSON, json.dumps({"predictions": predictions}).encode()


def predict(environ) -> tuple[str, bytes]:
    if environ["REQUEST_METHOD"] != "POST":
        raise Refused("405 Method Not Allowed", "POST a batch to /invocations")
    if SIGNATURE is None:
        raise Refused("503 Service Unavailable", PROBLEM)
    content_type = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
    arrays = inputs_of(read_body(environ), content_type)
    accept = environ.get("HTTP_ACCEPT") or JSON
    outputs = {name: tensor.numpy() for name, tensor in SIGNATURE(**arrays).items()}
    return answer(outputs, accept)


def app(environ, start_response):
    status, kind = "200 OK", JSON
    try:
        path = environ.get("PATH_INFO", "")
        if path == "/ping":
            if SIGNATURE is None:
                raise Refused("503 Service Unavailable", PROBLEM)
            body = b"{}"
        elif path == "/invocations":
            kind, body = predict(environ)
        else:
            raise Refused("404 Not Found", f"no {path}; use GET /ping or POST /invocations")
    except Refused as refused:
        status, body = refused.status, json.dumps({"error": str(refused)}).encode()
        print(
            f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO')}: {status}: {refused}",
            file=sys.stderr,
        )
    except Exception as error:  # a bug, or the model failing on valid input: say which
        traceback.print_exc()
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        status, body = "500 Internal Server Error", json.dumps({"error": reason}).encode()
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]
