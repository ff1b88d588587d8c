"""Plumbing, make predict [N=100] [ENDPOINT=name]: N examples of DATA_DIR/test, one a request
(JSON, TensorFlow Serving's shape), to the server of make serve-local, or to a SageMaker
endpoint; prints the accuracy, a few predictions and the latency p50/p99."""

import http.client
import json
import sys
import time
from pathlib import Path

import numpy as np

from smt import aws
from smt.settings import SettingsParser, whole_number

JSON = "application/json"
SHOWN = 5  # predictions printed


def examples(data_dir: Path, n: int):
    """(inputs as the model takes them, labels): the first n of the test channel."""
    files = sorted((data_dir / "test").rglob("*.npz"))
    if not files:
        raise aws.Refused(f"no .npz files in {data_dir / 'test'}; run make data")
    pairs = []
    for file in files:
        with np.load(file) as arrays:
            pairs.append((arrays["x"], arrays["y"]))
    x, y = (np.concatenate(arrays)[:n] for arrays in zip(*pairs, strict=True))
    return x.astype("float32") / 255.0, y  # scaled as train.py's read_channel does


def local_server(port: int):
    """send(body) -> the answer's body, over one kept-alive connection to localhost:port."""
    connection = http.client.HTTPConnection("localhost", port, timeout=60)

    def send(body: bytes) -> bytes:
        headers = {"Content-Type": JSON, "Accept": JSON}
        try:
            connection.request("POST", "/invocations", body, headers)
            answer = connection.getresponse()
            data = answer.read()
        except OSError as error:
            raise aws.Refused(f"nothing answers on localhost:{port} ({error.strerror or error}); "
                              "start the server first: make serve-local") from None  # fmt: skip
        if answer.status != 200:
            reason = json.loads(data or b"{}").get("error", data[:200])
            raise aws.Refused(f"the server answered {answer.status}: {reason}")
        return data

    return send, f"http://localhost:{port}/invocations"


def endpoint(name: str, region: str | None):
    """send(body) -> the answer's body, from the SageMaker endpoint NAME."""
    runtime = aws.session(region).client("sagemaker-runtime")

    def send(body: bytes) -> bytes:
        answer = runtime.invoke_endpoint(
            EndpointName=name, ContentType=JSON, Accept=JSON, Body=body
        )
        return answer["Body"].read()

    return send, f"endpoint {name}"


def label_of(prediction) -> int:
    """The class: the highest score (the first output's, for a model of several)."""
    if isinstance(prediction, dict):
        prediction = next(iter(prediction.values()))
    return int(np.argmax(prediction))


def main(argv=None) -> int:
    parser = SettingsParser(__doc__)
    parser.setting("--n", "examples to send", whole_number, "100")
    parser.setting("--endpoint", "a SageMaker endpoint (default: the local server)")
    parser.setting("--serve-port", "the local server's port", whole_number, "8080")
    parser.setting("--data-dir", "the channels' folder", Path, "data")
    parser.setting("--aws-region", "the endpoint's region")
    args = parser.parse_args(argv)
    try:
        x, y = examples(args.data_dir, args.n)
        send, target = (
            endpoint(args.endpoint, args.aws_region)
            if args.endpoint
            else local_server(args.serve_port)
        )
        test = args.data_dir / "test"
        print(f"sending {len(x)} examples of {test} to {target}, one a request", flush=True)
        labels, seconds = [], []
        for example in x:
            body = json.dumps({"instances": [example.tolist()]}).encode()
            started = time.perf_counter()
            answer = send(body)
            seconds.append(time.perf_counter() - started)
            try:
                labels.append(label_of(json.loads(answer)["predictions"][0]))
            except (ValueError, KeyError, IndexError, TypeError):
                raise aws.Refused(f"the answer has no predictions: {answer[:100]!r}") from None
    except Exception as error:  # one line: AWS's, the server's, or ours
        sys.exit(f"error: {aws.explain(error)}")
    right = np.asarray(labels) == y
    print(f"accuracy: {right.mean():.4f} ({right.sum()} of {len(y)} right)")
    print("example  predicted  label")
    for i in range(min(SHOWN, len(y))):
        print(f"{i:>7}  {labels[i]:>9}  {y[i]:>5}{'' if right[i] else '  (wrong)'}")
    p50, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 99])
    print(f"latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms (a request each, as the client sees it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
