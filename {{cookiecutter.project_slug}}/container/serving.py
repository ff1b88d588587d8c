"""Plumbing: the HTTP app that `serve` runs (SageMaker's inference contract); need not be opened.

GET /ping: 200 once the model in /opt/ml/model/1 is loaded, else 503 and why.
POST /invocations (and TF Serving's own path, /v1/models/<name>[/versions/<n>]:predict):
TensorFlow Serving's REST predict API as TF Serving documents it, so a client of AWS's TF
Serving image works here unchanged, and the other way round:
- application/json, the row format {"instances": [...]} answered {"predictions": [...]}, or
  the columnar format {"inputs": ...} answered {"outputs": ...}; "signature_name" picks a
  signature (default serving_default); a model of several inputs takes an object of them per
  instance (rows) or one object of them (columns); binary values are {"b64": "..."};
- application/x-npy (the SDK's NumPySerializer): one batch for a model of one input.
The Accept header picks JSON or .npy back. A bad request gets a 4xx and {"error": "..."}.
Nothing here knows the model's layers: whatever train.py saves is served. Each gunicorn
worker imports this module, so each loads the model once.
"""

import base64
import io
import json
import os
import re
import sys
import traceback
from collections import namedtuple

import numpy as np

MODEL_DIR = "/opt/ml/model/1"
MAX_BODY = 6 * 1024 * 1024  # SageMaker's real-time payload limit (InvokeEndpoint's Body)
JSON, NPY = "application/json", "application/x-npy"
DEFAULT = "serving_default"
TF_SERVING_PATH = re.compile(r"/v1/models/[^/:]+(/versions/\d+|/labels/[^/:]+)?:predict")


class Refused(Exception):
    """A request we do not serve: its HTTP status and the reason, one line."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status


def bad(reason: str) -> Refused:
    return Refused("400 Bad Request", reason)


# One signature of the model: its inputs by name, each (numpy dtype, shape: None where any
# size goes, or None for any shape), and its call, from arrays by name to arrays by name.
Signature = namedtuple("Signature", "inputs call")


def of_tensorflow(function) -> Signature:
    specs = function.structured_input_signature[1]
    inputs = {name: (spec.dtype.as_numpy_dtype, None if spec.shape.rank is None
                     else tuple(spec.shape.as_list())) for name, spec in specs.items()}  # fmt: skip
    return Signature(inputs, lambda arrays: {k: v.numpy() for k, v in function(**arrays).items()})


def load(model_dir: str = MODEL_DIR):
    """({name: Signature}, None), or (None, why there is none)."""
    if not os.path.isdir(model_dir):
        return None, f"no model at {model_dir}: mount the folder holding 1/ at /opt/ml/model"
    try:
        import tensorflow as tf

        signatures = tf.saved_model.load(model_dir).signatures
        return {name: of_tensorflow(function) for name, function in signatures.items()}, None
    except Exception as error:  # not a SavedModel, or a TensorFlow error: /ping says which
        why = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        return None, f"the model at {model_dir} cannot be loaded ({why})"


SIGNATURES, PROBLEM = load()


def read_body(environ) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)  # unknown (chunked): read up to the limit
    if length > MAX_BODY:
        for _ in range(min(length, 8 * MAX_BODY) // 2**20):  # drained: the client reads why
            environ["wsgi.input"].read(2**20)
        raise Refused("413 Payload Too Large",
                      f"the body has {length} bytes; the limit is {MAX_BODY}")  # fmt: skip
    body = environ["wsgi.input"].read(length or MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Refused("413 Payload Too Large", f"the body is over the limit of {MAX_BODY} bytes")
    if not body:
        raise bad("the body is empty; send a batch of inputs")
    return body


def is_b64(value) -> bool:
    return isinstance(value, dict) and list(value) == ["b64"]


def by_name(value, names: list[str], what: str) -> dict:
    """An object of the inputs {name: value}, or for a model of one input its value alone."""
    if isinstance(value, dict) and not is_b64(value):
        if missing := [name for name in names if name not in value]:
            raise bad(f"{what} lacks the inputs {missing}; the model takes {names}")
        return {name: value[name] for name in names}
    if len(names) > 1:
        raise bad(f"the model takes the inputs {names}: send an object of them as {what}")
    return {names[0]: value}


def decoded(value):
    """TF Serving's binary values: {"b64": "..."} is bytes, text is UTF-8."""
    if is_b64(value):
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [decoded(item) for item in value]
    return value.encode() if isinstance(value, str) else value


def array_of(name: str, value, dtype, shape) -> np.ndarray:
    """The input as an array of the signature's dtype, checked against its shape."""
    text = np.dtype(dtype).kind in "OSU"
    try:
        array = np.asarray(decoded(value), dtype=object) if text else np.asarray(value)
    except ValueError:  # rows of different lengths
        raise bad(f"input {name!r}: the instances differ in shape") from None
    wanted = "b" if np.dtype(dtype).kind == "b" else "iuf"
    if not text and array.dtype.kind not in wanted:
        given = {"U": "text", "b": "true/false", "O": "mixed values"}.get(array.dtype.kind)
        raise bad(f"input {name!r} must be numbers, not {given or array.dtype.name}")
    fits = shape is None or array.ndim == len(shape) and all(
        want in (None, got) for want, got in zip(shape, array.shape, strict=True))  # fmt: skip
    if not fits:
        raise bad(f"input {name!r} has shape {array.shape}; the model takes {shape}")
    return array if text else array.astype(dtype)


def parsed(body: bytes, content_type: str) -> tuple[Signature, dict, bool]:
    """(the signature, its inputs as arrays, whether the request came in rows)."""
    if content_type == NPY:
        request, rows = {"instances": None}, True
    elif content_type == JSON:
        try:
            request = json.loads(body)
        except ValueError as error:
            raise bad(f"the body is not JSON ({error})") from None
        rows = isinstance(request, dict) and "instances" in request
        if not isinstance(request, dict) or rows == ("inputs" in request):
            raise bad('send one of {"instances": [...]} (rows) or {"inputs": ...} (columns)')
    else:
        raise Refused("415 Unsupported Media Type",
                      f"Content-Type {content_type!r} is not {JSON} or {NPY}")  # fmt: skip
    name = request.get("signature_name", DEFAULT)
    if not isinstance(name, str) or name not in SIGNATURES:
        raise bad(f"the model has no signature {name!r}; it has {sorted(SIGNATURES)}")
    signature = SIGNATURES[name]
    names = list(signature.inputs)
    if content_type == NPY:
        if len(names) > 1:
            raise bad(f"the model takes the inputs {names}: send JSON")
        try:
            values = {names[0]: np.load(io.BytesIO(body), allow_pickle=False)}
        except (ValueError, EOFError, OSError) as error:  # pickled objects too
            raise bad(f"the body is not a .npy array ({error})") from None
    elif rows:
        if not isinstance(request["instances"], list):
            raise bad('"instances" must be a list, one item per instance')
        instances = [by_name(item, names, "each instance") for item in request["instances"]]
        values = {name: [instance[name] for instance in instances] for name in names}
    else:
        values = by_name(request["inputs"], names, '"inputs"')
    arrays = {name: array_of(name, values[name], *signature.inputs[name]) for name in names}
    return signature, arrays, rows


def jsonable(name: str, array: np.ndarray):
    """Numbers as they are; bytes as text, or {"b64": ...} for an output named *_bytes."""
    if array.dtype.kind not in "OS":
        return array.tolist()
    encode = (lambda b: {"b64": base64.b64encode(b).decode()}) if name.endswith("_bytes") else (
        lambda b: b.decode(errors="replace"))  # fmt: skip
    return np.vectorize(encode, otypes=[object])(array).tolist()


def answer(outputs: dict, accept: str, rows: bool) -> tuple[str, bytes]:
    """(content type, body) of the outputs, in the first type of Accept we can write: rows
    as {"predictions": ...}, columns as {"outputs": ...}, as TF Serving answers each."""
    wanted = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    kind = next((t for t in wanted if t in (JSON, NPY, "*/*", "application/*")), None)
    if kind is None:
        raise Refused("406 Not Acceptable", f"Accept {accept!r} has neither {JSON} nor {NPY}")
    if kind == NPY:
        if len(outputs) > 1:
            raise Refused("406 Not Acceptable",
                          f"the model has outputs {sorted(outputs)}: accept JSON")  # fmt: skip
        buffer = io.BytesIO()
        np.save(buffer, next(iter(outputs.values())), allow_pickle=False)
        return NPY, buffer.getvalue()
    values = {name: jsonable(name, array) for name, array in outputs.items()}
    if len(values) == 1:
        [result] = values.values()
    elif rows:  # one object per instance
        result = [dict(zip(values, row, strict=True)) for row in zip(*values.values(), strict=True)]
    else:
        result = values
    return JSON, json.dumps({"predictions" if rows else "outputs": result}).encode()


def predict(environ) -> tuple[str, bytes]:
    if environ["REQUEST_METHOD"] != "POST":
        raise Refused("405 Method Not Allowed", "POST a batch to /invocations")
    if SIGNATURES is None:
        raise Refused("503 Service Unavailable", PROBLEM)
    content_type = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
    signature, arrays, rows = parsed(read_body(environ), content_type)
    return answer(signature.call(arrays), environ.get("HTTP_ACCEPT") or JSON, rows)


def app(environ, start_response):
    status, kind = "200 OK", JSON
    try:
        path = environ.get("PATH_INFO", "")
        if path == "/ping":
            if SIGNATURES is None:
                raise Refused("503 Service Unavailable", PROBLEM)
            body = b"{}"
        elif path == "/invocations" or TF_SERVING_PATH.fullmatch(path):
            kind, body = predict(environ)
        else:
            raise Refused("404 Not Found", f"no {path}; use GET /ping or POST /invocations")
    except Refused as refused:
        status, body = refused.status, json.dumps({"error": str(refused)}).encode()
        print(f"{environ['REQUEST_METHOD']} {path}: {status}: {refused}", file=sys.stderr)
    except Exception as error:  # a bug, or the model failing on valid input: say which
        traceback.print_exc()
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        status, body = "500 Internal Server Error", json.dumps({"error": reason}).encode()
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]
