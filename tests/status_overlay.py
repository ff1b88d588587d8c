"""StatusOverlay: a proxy in front of the moto server for what moto 5.2.5 cannot do.

moto makes every training job Completed and every endpoint InService at once, has no state
manager for training jobs, no StopTrainingJob (it answers 500) and no IAM
SimulatePrincipalPolicy (500). Its tuning jobs are Completed at once too, with one made-up trial
("FakeTrainingJobName") as the best, and it has no ListTrainingJobsForHyperParameterTuningJob
nor StopHyperParameterTuningJob. The overlay
forwards every request (any method: JSON, query and S3 calls alike) to moto, so moto still
does the work and its recorder sees each one, and changes only the answers it is told to.
"""

import http.client
import json
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

THROTTLED = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
ANY_JOB = "*"  # statuses[ANY_JOB]: the script of a job whose name the test cannot know
# the describe calls whose answers are scripted: (the name in the answer, the overlay's script)
SCRIPTED = {"SageMaker.DescribeTrainingJob": ("TrainingJobName", "statuses"),
            "SageMaker.DescribeEndpoint": ("EndpointName", "endpoint_statuses"),
            "SageMaker.DescribeHyperParameterTuningJob":
                ("HyperParameterTuningJobName", "tuning_statuses")}  # fmt: skip
HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "date", "server", "host"}


class StatusOverlay(ThreadingHTTPServer):
    """Answers DescribeTrainingJob with the next status of `statuses[job]` (or of
    `statuses[ANY_JOB]`; the last one repeats) merged into moto's answer, DescribeEndpoint
    likewise from `endpoint_statuses[endpoint]` (or `[ANY_JOB]`), and calls
    `on_describe(n)` on the n-th describe first. With `answer_stop`, StopTrainingJob, once
    moto has seen it, gets AWS's empty success answer instead of moto's 500.
    `query_answers[action]` answers a query-protocol call (IAM's Action=...) moto has seen,
    with the XML it returns for the request's form fields (None: moto's answer stands). The
    next `fail_next[target]` requests of an X-Amz-Target get AWS's throttling error, unforwarded.
    Tuning jobs alike: DescribeHyperParameterTuningJob merges the next of `tuning_statuses`,
    ListTrainingJobsForHyperParameterTuningJob answers `trials[job]` (or `trials[ANY_JOB]`),
    and with `answer_stop`, StopHyperParameterTuningJob gets AWS's empty success answer.
    `json_answers[target]` answers a JSON call (X-Amz-Target) moto has seen: it gets the
    request's parameters and moto's answer (None unless a 200 in JSON), and returns the answer
    to give (None: moto's stands): a listing by a filter moto ignores, UpdateTrainingJob, the
    Price List API's GetProducts (moto has no pricing), a CodeBuild build still running."""

    def __init__(self, moto):
        super().__init__(("127.0.0.1", 0), ForwardToMoto)
        self.moto = urllib.parse.urlsplit(moto.url)
        self.statuses: dict[str, list[dict]] = {}
        self.tuning_statuses: dict[str, list[dict]] = {}
        self.trials: dict[str, list[dict]] = {}
        self.endpoint_statuses: dict[str, list[dict]] = {}
        self.on_describe: Callable[[int], None] = lambda n: None
        self.answer_stop = False
        self.query_answers: dict[str, Callable[[dict[str, str]], bytes]] = {}
        self.describes = 0
        self.fail_next: dict[str, int] = {}
        self.json_answers: dict[str, Callable[[dict, dict | None], dict | None]] = {}
        self.answered: list[tuple[str, dict]] = []  # (target, parameters) json_answers saw

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_status(self, name: str, statuses: dict[str, list[dict]]) -> dict:
        self.describes += 1
        self.on_describe(self.describes)
        script = statuses.get(name) or statuses.get(ANY_JOB, [{}])
        return script.pop(0) if len(script) > 1 else script[0]


class ForwardToMoto(BaseHTTPRequestHandler):
    server: StatusOverlay
    protocol_version = "HTTP/1.1"  # answers S3's "Expect: 100-continue" at once

    def forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target", "")
        if self.server.fail_next.get(target):
            self.server.fail_next[target] -= 1
            return self.answer(400, THROTTLED, {"Content-Type": "application/x-amz-json-1.1"})
        moto = http.client.HTTPConnection(self.server.moto.hostname, self.server.moto.port, 10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        moto.request(self.command, self.path, body, headers)
        answer = moto.getresponse()
        status, payload = answer.status, answer.read()
        headers = {k: v for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP}
        length = answer.getheader("Content-Length")  # a HEAD's: the object's size, no body
        moto.close()
        form = dict(urllib.parse.parse_qsl(body.decode(errors="replace")))
        scripted = None
        if target in self.server.json_answers:
            self.server.answered.append((target, json.loads(body or b"{}")))
            ok = status == 200 and payload.lstrip().startswith(b"{")
            scripted = self.server.json_answers[target](
                self.server.answered[-1][1], json.loads(payload) if ok else None
            )
        if scripted is not None:
            status, payload = 200, json.dumps(scripted, default=str).encode()
            headers = {"Content-Type": "application/x-amz-json-1.1"}
        elif target in SCRIPTED and status == 200:
            key, script = SCRIPTED[target]
            described = json.loads(payload)
            statuses = getattr(self.server, script)
            described.update(self.server.next_status(described[key], statuses))
            payload = json.dumps(described).encode()
        elif target == "SageMaker.ListTrainingJobsForHyperParameterTuningJob":
            name = json.loads(body)["HyperParameterTuningJobName"]
            trials = self.server.trials.get(name, self.server.trials.get(ANY_JOB, []))
            status, payload = 200, json.dumps({"TrainingJobSummaries": trials}).encode()
            headers = {"Content-Type": "application/x-amz-json-1.1"}
        elif target.startswith("SageMaker.Stop") and self.server.answer_stop:
            status, payload = 200, b"{}"
        elif not target and form.get("Action") in self.server.query_answers:
            scripted = self.server.query_answers[form["Action"]](form)
            if scripted is not None:  # None: moto's own answer
                status, payload, headers = 200, scripted, {"Content-Type": "text/xml"}
        self.answer(status, payload, headers, length if self.command == "HEAD" else None)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

    def answer(self, status: int, payload: bytes, headers: dict, length: str | None = None):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", length or str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, *args) -> None:  # keep pytest's output to the test's own
        pass
