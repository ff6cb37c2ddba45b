"""Shared fixtures: a real local AWS (moto's standalone server) for tests and CLI subprocesses.

``moto_server`` is session-scoped: one server per pytest process, so each xdist worker gets its
own (on its own free port of 127.0.0.1) and workers never see each other's tables. ``aws_env``
resets that server before each test and gives the environment a ``keyshift`` subprocess needs;
``boto_clients`` gives boto3 clients pointed at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import pytest
from keyshift.console.demo import DEMO_ENV, LocalMotoServer, reset_moto

#: Variables that could point a test at a real account or another endpoint: never inherited.
_AWS_LEAKS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
              "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ROLE_ARN",
              "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "KEYSHIFT_SPEC", "KEYSHIFT_WORKSPACE",
              "KEYSHIFT_READ_ONLY")


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start moto's server on 127.0.0.1 (a free port) for this pytest process; yield its URL."""
    log = tmp_path_factory.mktemp("moto") / "moto-server.log"
    server = LocalMotoServer(log=log)
    try:
        server.start()
    except RuntimeError as exc:  # pragma: no cover - environment problem, say it plainly
        pytest.fail(f"cannot start moto's server: {exc}", pytrace=False)
    try:
        yield server.endpoint_url
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Reset the server and return the environment for a process pointed at it.

    The same variables are set in ``os.environ`` for the test's duration (so in-process boto3
    clients and ``keyshift`` subprocesses agree); credentials are always the dummy ones.
    """
    reset_moto(moto_server)
    env = {"AWS_ENDPOINT_URL": moto_server, **DEMO_ENV}
    for name in _AWS_LEAKS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@dataclass
class BotoClients:
    """boto3 clients pointed at the test server."""

    endpoint_url: str
    dynamodb: Any
    s3: Any
    dynamodbstreams: Any


@pytest.fixture
def boto_clients(aws_env: dict[str, str]) -> BotoClients:
    """Fresh boto3 clients (dynamodb, s3, dynamodbstreams) on the freshly reset server."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
        region_name=aws_env["AWS_DEFAULT_REGION"],
    )
    config = Config(account_id_endpoint_mode="disabled", retries={"mode": "standard", "max_attempts": 3})

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=aws_env["AWS_ENDPOINT_URL"], config=config)

    return BotoClients(aws_env["AWS_ENDPOINT_URL"], client("dynamodb"), client("s3"), client("dynamodbstreams"))

