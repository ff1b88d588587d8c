"""make predict [N=100] [ENDPOINT=name]: N examples of DATA_DIR/test as stored (the model
scales its inputs), one a request in TensorFlow Serving's JSON, to make serve-local's server or
an endpoint; prints the accuracy, the first 5 predictions and the latency p50/p99."""

import functools
import http.client
import json
import time

from smt import aws
from smt.errors import Failure

JSON = "application/json"


def examples(data_dir, n: int):
    """(inputs, labels): the first n of the test channel, every file of it."""
    import numpy as np

    files = sorted((data_dir / "test").rglob("*.npz"))
    if not files:
        raise Failure(f"DATA_DIR: no .npz files in {data_dir / 'test'}; run make data")
    pairs = []
    for file in files:
        with np.load(file) as arrays:
            pairs.append((arrays["x"], arrays["y"]))
    return (np.concatenate(arrays)[:n] for arrays in zip(*pairs, strict=True))


def sender(settings):
    """(send(body) -> the answer's body, where to): ENDPOINT, else serve-local's (kept alive)."""
    if name := settings.endpoint:
        runtime = aws.session(settings.aws_region).client("sagemaker-runtime")
        invoke = functools.partial(runtime.invoke_endpoint, EndpointName=name, ContentType=JSON)
        return lambda body: invoke(Accept=JSON, Body=body)["Body"].read(), f"endpoint {name}"
    port = settings.serve_port
    connection = http.client.HTTPConnection("localhost", port, timeout=60)

    def send(body: bytes) -> bytes:
        try:
            connection.request("POST", "/invocations", body, {"Content-Type": JSON, "Accept": JSON})
            answer = connection.getresponse()
            data = answer.read()
        except OSError as error:
            nothing = f"nothing answers on localhost:{port} ({error.strerror or error})"
            raise Failure(f"{nothing}; start the server first: make serve-local") from None
        if answer.status != 200:
            try:
                reason = json.loads(data)["error"]
            except (ValueError, KeyError, TypeError):
                reason = data[:200]
            raise Failure(f"the server answered {answer.status}: {reason}")
        return data

    return send, f"http://localhost:{port}/invocations"


def main(settings) -> int:
    import numpy as np

    x, y = examples(settings.project_dir / settings.data_dir, settings.n)  # as given, if absolute
    send, target = sender(settings)
    sending = f"sending {len(x)} examples of {settings.data_dir / 'test'} to {target}"
    print(f"{sending}, one a request", flush=True)
    labels, seconds = [], []
    for example in x:
        body = json.dumps({"instances": [example.tolist()]}).encode()
        started = time.perf_counter()
        answer = send(body)
        seconds.append(time.perf_counter() - started)
        try:  # the class: the highest score (the first output's, for a model of several)
            prediction = json.loads(answer)["predictions"][0]
            if isinstance(prediction, dict):
                prediction = next(iter(prediction.values()))
            labels.append(int(np.argmax(prediction)))
        except (ValueError, KeyError, IndexError, TypeError, StopIteration):
            raise Failure(f"the answer has no predictions: {answer[:100]!r}") from None
    right = np.asarray(labels) == y
    print(f"accuracy: {right.mean():.4f} ({right.sum()} of {len(y)} right)")
    print("example  predicted  label")
    for i in range(min(5, len(y))):
        print(f"{i:>7}  {labels[i]:>9}  {y[i]:>5}{'' if right[i] else '  (wrong)'}")
    p50, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 99])
    print(f"latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms (a request each, as the client sees it)")
    return 0
