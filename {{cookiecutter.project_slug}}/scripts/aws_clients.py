"""boto3 clients for the scripts, with short timeouts and one retry, so a wrong region or a
dead network fails in seconds with an error instead of hanging for minutes; and the code
and message of an error AWS answered with."""

AWS_TIMEOUT_SECONDS = 10


def clients(region: str | None, *services: str, timeout: float = AWS_TIMEOUT_SECONDS) -> list:
    """One client per service, all in one session (region None: the AWS config's)."""
    import boto3  # imported here: the scripts' local commands work without it
    import botocore.config

    config = botocore.config.Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"total_max_attempts": 2},  # the call and one retry
    )
    session = boto3.Session(region_name=region)
    return [session.client(service, config=config) for service in services]


def aws_error(error: Exception) -> tuple[str, str]:
    """(code, message) of an error AWS answered with; ("", "") for any other error."""
    answer = (getattr(error, "response", None) or {}).get("Error", {})
    return answer.get("Code", ""), answer.get("Message", "")
