"""What an instance costs an hour (the AWS Price List API, cached for a day in the user's cache
folder), and the one line printed before each paid action, where COST_LIMIT refuses it."""

import json
import math
import os
import time
from pathlib import Path

from smt import aws
from smt.errors import BadSetting

DAY = 86400
PRICE_LIST_REGION = "us-east-1"  # the Price List API's endpoint (it has one more, in Mumbai)
SPOT_SAVING = "up to 90% less"  # AWS's figure for managed spot training
UNKNOWN = "price unknown"
# action -> (the price list's component, the settings of instance type and count)
USE = {"train-remote": "Training", "tune": "Training", "deploy": "Hosting"}


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sm-template" / "prices.json"


def hourly(region: str, instance_type: str, component: str) -> tuple[float | None, str]:
    """(US dollars an hour, or None; why none): on-demand, from the cache if under a day old."""
    filters = {"productFamily": "ML Instance", "regionCode": region,
               "instanceName": instance_type, "component": component}  # fmt: skip
    return cached(f"{region} {instance_type} {component}", "AmazonSageMaker", filters,
                  lambda attributes, unit: unit.startswith("Hr"))  # fmt: skip


def per_build_minute(region: str, compute_type: str) -> tuple[float | None, str]:
    """(US dollars a build minute of a CodeBuild compute type on Linux, or None; why none).
    The price list names BUILD_GENERAL1_MEDIUM by its usage type, `...Build-Min:g1.medium`."""
    size = compute_type.removeprefix("BUILD_GENERAL1_").lower()
    usage = f"Build-Min:g1.{size}"
    return cached(f"{region} {compute_type} CodeBuild", "CodeBuild", {"regionCode": region},
                  lambda attributes, unit: attributes.get("usagetype", "").endswith(usage)
                  and unit.startswith("Min"))  # fmt: skip


def cached(key: str, service: str, filters: dict, wanted) -> tuple[float | None, str]:
    """The highest on-demand price of `service`'s products that match `filters` and whose
    price dimension is `wanted(attributes, unit)`; from the cache if under a day old."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    path = cache_file()
    cache = json.loads(path.read_text()) if path.is_file() else {}
    if key in cache and time.time() - cache[key][1] < DAY:
        return cache[key][0], ""
    # A price is a nicety: one attempt, 10 s at most, not the 3 x 60 s of the other calls
    config = Config(retries={"total_max_attempts": 1}, read_timeout=10)
    pricing = aws.session(PRICE_LIST_REGION).client("pricing", config=config)
    try:
        pages = pricing.get_paginator("get_products").paginate(
            ServiceCode=service, FormatVersion="aws_v1",
            Filters=[{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()],
        )  # fmt: skip
        products = [json.loads(text) for page in pages for text in page["PriceList"]]
    except (BotoCoreError, ClientError) as error:
        return None, aws.explain(error)
    prices = [float(dimension["pricePerUnit"]["USD"]) for product in products
              for term in product["terms"].get("OnDemand", {}).values()
              for dimension in term["priceDimensions"].values()
              if wanted(product["product"].get("attributes", {}),
                        dimension.get("unit", ""))]  # fmt: skip
    if not prices:
        return None, f"the price list has no price of {key}"
    cache[key] = [max(prices), time.time()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cache, indent=1))
    return cache[key][0], ""


def estimate(settings, action: str, compute_type: str = "") -> tuple[str, float | None]:
    """The line, and the worst case in dollars (None: not known). An endpoint's worst case
    is a day of it; a tuning job's, MAX_JOBS trainings of MAX_RUN each; a build's,
    BUILD_TIMEOUT minutes of its CodeBuild project's compute type."""
    if action == "build-remote":
        return build_estimate(settings, compute_type)
    if action == "deploy" and settings.serverless_memory:
        return "price: a serverless endpoint bills by request; not priced here", None
    if action == "deploy":
        kind, count, hours = settings.serve_instance_type, settings.serve_instance_count, 24
    else:
        kind, count, hours = (
            settings.instance_type,
            settings.instance_count,
            settings.max_run / 3600,
        )
    jobs = settings.max_jobs if action == "tune" else 1
    shape = f"{kind} x {count}" + (f" x {jobs} trainings" if jobs > 1 else "")
    price, why = hourly(settings.aws_region, kind, USE[action])
    if price is None:
        unchecked = "; COST_LIMIT not checked" if settings.cost_limit else ""
        return f"price: {shape}: {UNKNOWN} ({why}){unchecked}", None
    worst = price * count * hours * jobs
    if action == "deploy":
        return (
            f"price: {shape} x ${price:.4g}/h = ${worst / 24:.2f} an hour, ${worst:.2f} a day",
            worst,
        )
    text = f"price: {shape} x {hours:.3g} h (MAX_RUN) x ${price:.4g}/h = ${worst:.2f} at most"
    return text + (f" (SPOT=1: {SPOT_SAVING})" if settings.spot else ""), worst


def build_estimate(settings, compute_type: str) -> tuple[str, float | None]:
    minutes = math.ceil(settings.build_timeout / 60)  # CodeBuild bills whole minutes
    price, why = per_build_minute(settings.aws_region, compute_type)
    if price is None:
        unchecked = "; COST_LIMIT not checked" if settings.cost_limit else ""
        return f"price: build on {compute_type}: {UNKNOWN} ({why}){unchecked}", None
    worst = price * minutes
    return (f"price: build on {compute_type} x {minutes} min (BUILD_TIMEOUT) x "
            f"${price:.4g}/min = ${worst:.2f} at most"), worst  # fmt: skip


def line(settings, action: str, compute_type: str = "") -> str:
    """Print the price line of a paid action (train-remote, tune, deploy, build-remote: on
    `compute_type`), before anything is created: COST_LIMIT refuses (BadSetting) an action
    whose worst case is higher."""
    text, worst = estimate(settings, action, compute_type)
    print(text, flush=True)
    if worst is not None and settings.cost_limit and worst > settings.cost_limit:
        what = "a day of the endpoint" if action == "deploy" else "the worst case"
        fix = ("a shorter BUILD_TIMEOUT" if action == "build-remote" else "fewer or smaller"
               " instances (or a shorter MAX_RUN, fewer MAX_JOBS)")  # fmt: skip
        raise BadSetting(f"COST_LIMIT: {what} (${worst:.2f}) is over COST_LIMIT="
                         f"{settings.cost_limit:g}; choose {fix}, or raise COST_LIMIT")  # fmt: skip
    return text
