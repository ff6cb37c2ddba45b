"""The one place that builds AWS clients.

Every command and screen gets its clients from :class:`AwsContext`, so endpoint, region, profile
and the retry policy are decided once. Standard boto3 configuration (``AWS_ENDPOINT_URL``,
``AWS_PROFILE``, ``AWS_REGION``...) applies when no explicit option is given: we only pass what the
operator set. Retries use botocore's ``adaptive`` mode, which adds client-side rate limiting on
throttles to the standard exponential backoff.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

__all__ = ["AwsContext", "DEFAULT_REGION"]

#: Used only when neither ``--region`` nor the environment/profile sets one.
DEFAULT_REGION = "us-east-1"


@dataclass
class AwsContext:
    """Endpoint, region and profile for one keyshift invocation; builds and caches clients.

    ``hooks`` maps botocore event names to handlers registered on every client built here: tests
    and benchmarks inject faults or stub the network this way (``before-send``, ``after-call``).
    """

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    max_attempts: int = 10
    max_pool_connections: int = 32
    hooks: list[tuple[str, Any]] = field(default_factory=list)
    _session: boto3.session.Session | None = field(default=None, init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def session(self) -> boto3.session.Session:
        """The boto3 session (profile and region applied), created on first use."""
        if self._session is None:
            self._session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
        return self._session

    @property
    def region_name(self) -> str:
        """The effective region: option, environment or profile, else :data:`DEFAULT_REGION`."""
        return self.session.region_name or DEFAULT_REGION

    def config(self, *, parameter_validation: bool = True) -> Config:
        """The botocore config every client shares: adaptive retries, a connection pool."""
        return Config(
            retries={"mode": "adaptive", "max_attempts": self.max_attempts},
            max_pool_connections=self.max_pool_connections,
            # Streams calls need this with in-process moto; harmless against AWS.
            account_id_endpoint_mode="disabled",
            parameter_validation=parameter_validation,
        )

    def client(self, service: str) -> Any:
        """A cached, thread-safe boto3 client for ``service`` (``dynamodb``, ``dynamodbstreams``, ``s3``)."""
        return self._client(service, parameter_validation=True)

    def writer_client(self, service: str = "dynamodb") -> Any:
        """A client for bulk writers whose every item keyshift has already validated itself.

        botocore's client-side parameter validation walks every attribute of every item again on
        each request: in a stubbed restore it was over half of the writer threads' CPU, and under
        the GIL that CPU is throughput. The dump readers check every type key and value shape
        (:func:`keyshift.core.dumps.wire.wire_check`) before an item reaches a writer, and DynamoDB
        validates each request server-side anyway, so the restore and the ImportTable path skip it.
        Everything else (retries, endpoint, hooks) is the same as :meth:`client`.
        """
        return self._client(service, parameter_validation=False)

    def _client(self, service: str, *, parameter_validation: bool) -> Any:
        key = service if parameter_validation else f"{service}:unvalidated"
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                kwargs: dict[str, Any] = {"config": self.config(parameter_validation=parameter_validation),
                                          "region_name": self.region_name}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                client = self.session.client(service, **kwargs)
                for event, handler in self.hooks:
                    client.meta.events.register(event, handler)
                self._clients[key] = client
            return client

    def describe(self) -> dict[str, Any]:
        """Where clients point, for status lines and ``--json`` output."""
        return {"endpoint_url": self.endpoint_url, "region": self.region_name, "profile": self.profile}
