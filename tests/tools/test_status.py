"""make status on a moto account where the project bills (conftest's `billing`): each of its
jobs, warm pools and endpoints in one table with its hourly price, none of another project's;
a last line saying so when nothing bills."""

import re
import time

from helpers import OTHERS, actions, every_request_valid, request_body

SERVICES = ("sagemaker", "cloudformation", "ecr", "sts")


def table(out: str) -> dict[str, list[str]]:
    """name -> the row's cells (what, state, instances, price)."""
    rows = {}
    for line in out.splitlines()[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 5:
            rows[cells[1]] = [cells[0], *cells[2:]]
    return rows


def naming(moto, text: str) -> list[str]:
    """The recorded requests whose body or URL holds `text`."""
    return [action for action, request in zip(actions(moto), moto.recorded_requests(), strict=True)
            if text in request_body(request) + request["url"]]  # fmt: skip


def test_status_lists_the_projects_job_warm_pool_and_endpoint_with_prices_and_no_other(
    smt, aws, billing
):
    started = time.monotonic()
    done = smt("status")
    seconds = time.monotonic() - started

    assert done.code == 0, done.err
    assert table(done.out) == {
        billing.job: ["training job", "InProgress", "ml.m5.large x 1", "$0.500/h"],
        billing.warm: ["warm pool", "Available", "ml.m5.large x 1", "$0.500/h"],
        billing.endpoint: ["endpoint", "InService", "ml.m5.large x 2", "$0.500/h"],
    }
    assert done.out.splitlines()[-1].startswith("Billing now: $1.50/h known in all.")
    assert OTHERS not in done.out
    # another project's: only asked for its tags, which tell it apart
    assert set(naming(aws, OTHERS)) == {"SageMaker.ListTags"}
    checked = every_request_valid(aws, SERVICES)
    print(f"status on moto: {len(actions(aws))} requests ({checked} checked), {seconds:.1f} s")


def test_status_says_price_unknown_where_the_price_list_does_not_answer(
    smt, aws, billing, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", "http://127.0.0.1:9")  # discard: refused
    done = smt("status")
    assert done.code == 0, done.err
    assert table(done.out)[billing.job][-1] == "price unknown"
    assert done.out.splitlines()[-1].startswith("Billing now: $0.00/h known in all.")


def test_status_says_plainly_that_nothing_bills_when_nothing_of_the_project_does(smt, aws, priced):
    aws.client("sagemaker")  # an empty account
    done = smt("status")
    assert done.code == 0, done.err
    assert done.out.strip() == "Nothing of MNIST on SageMaker in us-east-1 is billing now."
