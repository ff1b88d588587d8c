"""make status: everything of this project that bills now, found by its ProjectName tag (a
name may be another project's too): running training and tuning jobs, warm pools, endpoints
(their instances, or a serverless one's memory), builds of build-remote; each with its hourly
price where the price list gives it. make teardown ends them all."""

from dataclasses import dataclass

from smt import aws, prices
from smt.endpoints import existing, newest_first, project_of, serving
from smt.search_space import aligned

WARM = ("Available", "InUse")  # a warm pool that bills: kept for a next job, or in one
ENDED = ("Failed", "Deleting")  # an endpoint that bills no more (teardown deletes it still)


@dataclass
class Item:
    kind: str  # training job, tuning job, warm pool, endpoint, build
    name: str
    state: str
    instance_type: str | None = None  # a build's: its compute type
    count: int = 0
    keep_alive: int = 0  # a training job's warm pool seconds
    hourly: float | None = None
    serving: str = ""  # an endpoint's: instances, or a serverless endpoint's memory

    @property
    def billing(self) -> bool:
        return self.kind != "endpoint" or self.state not in ENDED


def training(sagemaker, settings, kind: str, **filters) -> list[Item]:
    jobs = newest_first(sagemaker, settings, "TrainingJob", "list_training_jobs", **filters)
    found = []
    for job in jobs:
        name = job["TrainingJobName"]
        config = sagemaker.describe_training_job(TrainingJobName=name)["ResourceConfig"]
        state = job["WarmPoolStatus"]["Status"] if kind == "warm pool" else job["TrainingJobStatus"]
        found.append(Item(kind, name, state, config.get("InstanceType"),
                          config.get("InstanceCount", 0),
                          config.get("KeepAlivePeriodInSeconds", 0)))  # fmt: skip
    return found


def builds(codebuild, settings) -> list[Item]:
    """build-remote's builds in progress, when CODEBUILD_PROJECT has this project's tag. A build
    runs BUILD_TIMEOUT at most: the 100 newest (one page) hold every one still running."""
    name = settings.codebuild_project
    projects = codebuild.batch_get_projects(names=[name])["projects"]
    tags = {t["key"]: t["value"] for project in projects for t in project.get("tags", [])}
    if tags.get("ProjectName") != settings.project_name:
        return []
    ids = codebuild.list_builds_for_project(projectName=name, sortOrder="DESCENDING")["ids"]
    found = codebuild.batch_get_builds(ids=ids[:100])["builds"] if ids else []
    compute = projects[0]["environment"]["computeType"]
    return [Item("build", b["id"], b.get("currentPhase", "BUILD"), compute, 1)
            for b in found if b["buildStatus"] == "IN_PROGRESS"]  # fmt: skip


def billing(settings, session=None) -> list[Item]:
    """This project's items that bill (and its failed endpoints, which teardown deletes)."""
    session = session or aws.session(settings.aws_region)
    sagemaker = session.client("sagemaker")
    items = []
    for state in aws.RUNNING:
        listing, kind = "list_hyper_parameter_tuning_jobs", "HyperParameterTuningJob"
        for job in newest_first(sagemaker, settings, kind, listing, StatusEquals=state):
            items.append(Item("tuning job", job[f"{kind}Name"], state))  # its trials bill
        items += training(sagemaker, settings, "training job", StatusEquals=state)
    for state in WARM:
        items += training(sagemaker, settings, "warm pool", WarmPoolStatusEquals=state)
    if settings.codebuild_project:
        items += builds(session.client("codebuild"), settings)
    pages = sagemaker.get_paginator("list_endpoints").paginate(SortBy="CreationTime")
    for endpoint in (e for page in pages for e in page["Endpoints"]):
        if project_of(sagemaker, endpoint["EndpointArn"]) != settings.project_name:
            continue
        name = endpoint["EndpointName"]
        described = sagemaker.describe_endpoint(EndpointName=name)
        config = existing(sagemaker.describe_endpoint_config,
                          EndpointConfigName=described["EndpointConfigName"])  # fmt: skip
        variant = (config or {}).get("ProductionVariants", [{}])[0]
        items.append(Item("endpoint", name, endpoint["EndpointStatus"], variant.get("InstanceType"),
                          variant.get("InitialInstanceCount", 0),
                          serving=serving(variant) if variant else "?"))  # fmt: skip
    for item in items:
        if item.kind == "build":
            per_minute = prices.per_build_minute(settings.aws_region, item.instance_type)[0]
            item.hourly = per_minute and per_minute * 60
        elif item.instance_type and item.billing:
            component = "Hosting" if item.kind == "endpoint" else "Training"
            item.hourly = prices.hourly(settings.aws_region, item.instance_type, component)[0]
            item.hourly = item.hourly and item.hourly * item.count
    return items


def price(item: Item) -> str:
    if item.kind == "tuning job":
        return "its trainings'"
    if not item.billing or not item.instance_type:
        return "-"
    return prices.UNKNOWN if item.hourly is None else f"${item.hourly:.3f}/h"


def status(settings) -> int:
    items, where = billing(settings), f"{settings.project_name} in {settings.aws_region}"
    if items:
        rows = [[i.kind, i.name, i.state, i.serving or (f"{i.instance_type} x {i.count}"
                 if i.instance_type else ""), price(i)] for i in items]  # fmt: skip
        print(aligned([HEADER, *rows]))
    known = sum(i.hourly or 0 for i in items if i.billing)
    if not any(i.billing for i in items):
        print(f"Nothing of {where} is billing now.")
    else:
        print(f"Billing now: ${known:.2f}/h known in all. make teardown ends all of it.")
    return 0


HEADER = ["what", "name", "state", "instances", "price"]
