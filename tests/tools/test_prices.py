"""The price line before each paid action (smt/prices.py): instance type x count x hours x the
Price List API's price, cached for a day; COST_LIMIT refuses before anything is made; "price
unknown" when the price list does not answer. moto has no Price List API: the overlay serves
GetProducts in AWS's JSON shape (tests/tools/conftest.py: price_list)."""

import json
import os
import time

import pytest
from helpers import MOTO_ACCOUNT_ID, actions, price_list, put_image_tag, valid_params
from smt import prices

BUCKET = f"sagemaker-us-east-1-{MOTO_ACCOUNT_ID}"


def one_line(done) -> str:
    assert "Traceback" not in done.err, done.err
    [line] = done.err.strip().splitlines()
    return line


def created(moto) -> list[str]:
    """The recorded requests that make something: Create*, Put*, S3's PUT and POST."""
    return [
        a for a in actions(moto) if a.split(".")[-1].startswith(("Create", "Put", "PUT", "POST"))
    ]


def test_cost_limit_refuses_train_remote_over_it_with_its_price_line_and_nothing_made(
    smt, aws, priced
):
    aws.start_recording()

    done = smt("train-remote", "--cost-limit", "5")

    assert done.code == 2
    assert "price: ml.m5.large x 1 x 24 h (MAX_RUN) x $0.5/h = $12.00 at most" in done.out
    assert one_line(done).startswith(
        "error: COST_LIMIT: the worst case ($12.00) is over COST_LIMIT=5"
    )
    assert created(aws) == []
    assert "SageMaker.CreateTrainingJob" not in actions(aws)
    [(_, asked)] = priced.answered  # moto records no request of a service it lacks
    valid_params("pricing", "GetProducts", asked)
    filters = {f["Field"]: f["Value"] for f in asked["Filters"]}
    assert asked["ServiceCode"] == "AmazonSageMaker"
    assert filters == {"productFamily": "ML Instance", "regionCode": "us-east-1",
                       "instanceName": "ml.m5.large", "component": "Training"}  # fmt: skip


def test_tune_counts_max_jobs_trainings_and_spot_is_shown_as_up_to(smt, aws, priced):
    aws.start_recording()

    done = smt("tune", "--max-run", "3600", "--spot", "1", "--cost-limit", "1.5")

    assert done.code == 2, done.err
    assert ("price: ml.m5.large x 1 x 4 trainings x 1 h (MAX_RUN) x $0.5/h = $2.00 at most"
            " (SPOT=1: up to 90% less)") in done.out  # fmt: skip
    assert "is over COST_LIMIT=1.5" in one_line(done)
    assert created(aws) == []


def test_deploy_prices_an_endpoint_by_the_hour_and_cost_limit_bounds_its_day(smt, aws, priced):
    aws.start_recording()

    done = smt("deploy", "--serve-instance-count", "2", "--cost-limit", "10")

    assert done.code == 2
    assert "price: ml.m5.large x 2 x $0.25/h = $0.50 an hour, $12.00 a day" in done.out
    assert one_line(done).startswith("error: COST_LIMIT: a day of the endpoint ($12.00)")
    assert created(aws) == []


def test_price_unknown_when_the_price_list_does_not_answer_and_train_remote_goes_on(
    smt, aws, project_dir, monkeypatch
):
    """conftest's no_price_list: the Price List API at a port nothing listens on."""
    put_image_tag(aws, "mnist_on_sagemaker", "v1")
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.client("s3").put_object(Bucket=BUCKET, Key="in/training/data.npz", Body=b"npz")
    aws.start_recording()

    done = smt("train-remote", "--image-tag", "v1", "--data-s3", f"s3://{BUCKET}/in",
               "--wait", "0", "--cost-limit", "1")  # fmt: skip

    assert done.code == 0, done.err
    assert "price: ml.m5.large x 1: price unknown (AWS does not answer" in done.out
    assert "COST_LIMIT not checked" in done.out
    assert "SageMaker.CreateTrainingJob" in actions(aws)


def test_a_price_is_asked_once_a_day_then_read_from_the_cache(overlay, monkeypatch):
    asked = []
    stub = price_list({"Training": 0.5})
    overlay.json_answers["AWSPriceListService.GetProducts"] = lambda r, _: (
        asked.append(r) or stub(r)
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", overlay.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    assert prices.hourly("us-east-1", "ml.c5.xlarge", "Training") == (0.5, "")
    assert prices.hourly("us-east-1", "ml.c5.xlarge", "Training") == (0.5, "")
    assert len(asked) == 1
    assert prices.cache_file().parent == (prices.Path(os.environ["XDG_CACHE_HOME"]) / "sm-template")
    cached = json.loads(prices.cache_file().read_text())
    for entry in cached.values():
        entry[1] = time.time() - prices.DAY - 1  # a day old
    prices.cache_file().write_text(json.dumps(cached))
    assert prices.hourly("us-east-1", "ml.c5.xlarge", "Training") == (0.5, "")
    assert len(asked) == 2


@pytest.mark.parametrize(
    ("command", "name", "value", "says"),
    [
        ("deploy", "COST_LIMIT", "0", "'0' is not a number > 0"),
        ("train-remote", "COST_LIMIT", "-5", "'-5' is not a number > 0"),
        ("tune", "COST_LIMIT", "$5", "'$5' is not a number > 0"),
        ("deploy", "COST_LIMIT", "ten", "'ten' is not a number > 0"),
        ("teardown", "FORCE", "2", "'2' is not 1 (on) or 0 (off)"),
        ("teardown", "FORCE", "yes", "'yes' is not 1 (on) or 0 (off)"),
    ],
)
def test_a_bad_cost_limit_or_force_is_one_line_naming_it_before_any_request(
    smt, aws, command, name, value, says
):
    aws.start_recording()
    done = smt(command, "--" + name.lower().replace("_", "-"), value)
    assert done.code == 2
    line = one_line(done)
    assert line.startswith(f"error: {name}: ") and says in line, line
    assert actions(aws) == []
