"""The one place that builds AWS clients.

Every command and screen gets its clients from :class:`AwsContext`, so endpoint, region, profile
and the retry policy are decided once. Standard boto3 configuration (``AWS_ENDPOINT_URL``,
``AWS_PROFILE``, ``AWS_REGION``...) applies when no explicit option is given: we only pass what the
operator set. Retries use botocore's ``adaptive`` mode, which adds client-side rate limiting on
throttles to the standard exponential backoff.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
import orjson
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from .errors import KeyshiftError

__all__ = ["AwsContext", "CONNECT_ATTEMPTS", "CONNECT_TIMEOUT_S", "DEFAULT_REGION", "READ_OPERATION_PREFIXES",
           "READ_OPERATIONS", "ReadOnlyRefused", "aws_error_text", "cap_connect_retries", "install_read_only",
           "install_wire_json", "is_read_operation", "sends_wire_json"]

#: Used only when neither ``--region`` nor the environment/profile sets one.
DEFAULT_REGION = "us-east-1"
#: Attempts at *connecting* before a call fails (throttles and 5xx keep the full retry budget).
CONNECT_ATTEMPTS = 3
#: Seconds to wait for a TCP connection: with :data:`CONNECT_ATTEMPTS`, a dead or blackholed
#: endpoint fails in about 12 s at worst, and a refused connection in about a second.
CONNECT_TIMEOUT_S = 3.0


def cap_connect_retries(caught_exception: BaseException | None = None, attempts: int = 0, **_: Any) -> None:
    """``needs-retry`` hook: stop retrying a call that cannot even connect.

    botocore's adaptive mode retries every transient error up to ``max_attempts`` (10) with
    exponential backoff, which keeps throttled writes going but turns a wrong ``--endpoint-url``
    into 8-21 s of silence. botocore calls every ``needs-retry`` handler and a handler's exception
    ends the call, so raising the connection error after :data:`CONNECT_ATTEMPTS` attempts caps
    only connection failures; throttling and server errors keep their retries.
    """
    if isinstance(caught_exception, (EndpointConnectionError, ConnectTimeoutError)) and attempts >= CONNECT_ATTEMPTS:
        raise caught_exception


#: Operations whose request body :func:`install_wire_json` writes itself: the bulk writes, where
#: botocore's serializer is the largest client-side cost (a recursive walk of every attribute).
WIRE_JSON_OPERATIONS = frozenset({"BatchWriteItem"})
_WIRE_BODY = "keyshift_wire_body"  # request-context key: the body, from parameter build to before-call


def _b64(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot send a {type(value).__name__} in a DynamoDB request")


def _encode_wire_body(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    """``before-parameter-build`` (the last handler): the JSON body, written by orjson.

    DynamoDB's JSON protocol sends the parameters as they are, attribute values in wire format
    (``{"S": "x"}``, binary in base64): what keyshift's items already are. So the body is the
    parameters dumped with orjson, ``bytes`` values (as botocore returns them in
    ``UnprocessedItems``) in base64 and text values of ``B``/``BS`` sent as the base64 they are.
    botocore then serializes a placeholder (the table names, no requests) and
    :func:`_use_wire_body` puts the real body in its place before signing.
    """
    if model.name not in WIRE_JSON_OPERATIONS:
        return
    items = params.get("RequestItems")
    if type(items) is not dict:
        return  # not ours to judge: botocore serializes (and DynamoDB refuses) it as usual
    try:
        context[_WIRE_BODY] = orjson.dumps(params, default=_b64)
    except (TypeError, orjson.JSONEncodeError):
        return  # a value orjson cannot write: botocore's serializer handles (or rejects) it
    params["RequestItems"] = {table: [] for table in items}


def _use_wire_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """``before-call`` (the last handler): the body :func:`_encode_wire_body` wrote."""
    body = context.pop(_WIRE_BODY, None)
    if body is not None:
        params["body"] = body


def install_wire_json(client: Any) -> Any:
    """Make ``client`` write the bodies of :data:`WIRE_JSON_OPERATIONS` with orjson.

    The parameters must then be in DynamoDB wire format as sent: a ``B`` or ``BS`` value given as
    text is taken to be its base64 (as in dumps), where botocore's serializer would base64-encode
    the text again; ``bytes`` work either way. Handlers registered by callers (fault injection,
    stubs) run before the encoder, on the real parameters. Returns the client.
    """
    client.meta.events.register_last("before-parameter-build", _encode_wire_body,
                                      unique_id="keyshift-wire-json-encode")
    client.meta.events.register_last("before-call", _use_wire_body, unique_id="keyshift-wire-json-body")
    client.keyshift_wire_json = True
    return client


def sends_wire_json(client: Any) -> bool:
    """Whether ``client`` sends bulk writes' attribute values as wire JSON (:func:`install_wire_json`):
    then binary may stay base64 text; otherwise it must be ``bytes``
    (:func:`keyshift.core.kernel.items.for_botocore`)."""
    return getattr(client, "keyshift_wire_json", False) is True


class ReadOnlyRefused(KeyshiftError):
    """A client of a read-only :class:`AwsContext` was asked to call an operation that is not a read."""

    title = "Refused in read-only mode"


#: Operations a read-only client may call, by name prefix (DynamoDB, Streams, S3 and any other
#: service: ``GetItem``, ``BatchGetItem``, ``DescribeTable``, ``ListTables``, ``GetRecords``,
#: ``GetShardIterator``, ``GetObject``, ``HeadObject``, ``ListObjectsV2``…).
READ_OPERATION_PREFIXES = ("Get", "BatchGet", "Describe", "List", "Head")
#: …and by exact name.
READ_OPERATIONS = frozenset({"Query", "Scan", "TransactGetItems"})


def is_read_operation(operation: str) -> bool:
    """Whether ``operation`` (botocore's name, e.g. ``PutItem``) only reads."""
    return operation in READ_OPERATIONS or operation.startswith(READ_OPERATION_PREFIXES)


def _targets(params: dict[str, Any]) -> str:
    """What a refused call would have touched, for the message: table(s), bucket and key, stream."""
    if params.get("TableName"):
        return f" on table {params['TableName']}"
    if isinstance(params.get("RequestItems"), dict):
        return f" on table {', '.join(map(str, params['RequestItems']))}"
    if isinstance(params.get("TransactItems"), list):
        tables = sorted({str(op.get("TableName")) for item in params["TransactItems"] if isinstance(item, dict)
                         for op in item.values() if isinstance(op, dict) and op.get("TableName")})
        return f" on table {', '.join(tables)}" if tables else ""
    if params.get("Bucket"):
        return f" on s3://{params['Bucket']}" + (f"/{params['Key']}" if params.get("Key") else "")
    for name in ("StreamArn", "ResourceArn", "TableArn"):
        if params.get(name):
            return f" on {params[name]}"
    return ""


def _refuse_writes(params: dict[str, Any], model: Any, **_: Any) -> None:
    """``before-parameter-build`` (the first handler): refuse anything but a read, before the
    request is even serialized, so nothing leaves the process."""
    if is_read_operation(model.name):
        return
    service = model.service_model.service_name
    raise ReadOnlyRefused(f"read-only mode: refusing {service} {model.name}{_targets(params)}"
                          " (keyshift was started with --read-only; nothing was sent)")


def install_read_only(client: Any) -> Any:
    """Make ``client`` refuse every operation that is not a read (:func:`is_read_operation`) with
    :class:`ReadOnlyRefused`, before parameters are built; returns the client."""
    client.meta.events.register_first("before-parameter-build", _refuse_writes, unique_id="keyshift-read-only")
    client.keyshift_read_only = True
    return client


def aws_error_text(exc: BaseException, endpoint: str | None = None) -> str:
    """One line an operator can act on for a botocore error: what failed, where, why."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "?")
        where = f" at {endpoint}" if endpoint else ""
        return f"AWS refused {op}{where}: {err.get('Code', '?')}: {err.get('Message', '') or exc}"
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        url = exc.kwargs.get("endpoint_url") or endpoint or "the AWS endpoint"
        return (f"cannot connect to {url} after {CONNECT_ATTEMPTS} attempts ({exc}); check --endpoint-url,"
                " AWS_ENDPOINT_URL and the network")
    if isinstance(exc, BotoCoreError):
        return f"AWS call failed{f' at {endpoint}' if endpoint else ''}: {exc}"
    return str(exc)


@dataclass
class AwsContext:
    """Endpoint, region and profile for one keyshift invocation; builds and caches clients.

    ``hooks`` maps botocore event names to handlers registered on every client built here: tests
    and benchmarks inject faults or stub the network this way (``before-send``, ``after-call``).

    ``read_only``: every client built here refuses any operation that is not a read
    (:func:`install_read_only`), so a bug in a command cannot write in ``--read-only`` mode.
    """

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    max_attempts: int = 10
    max_pool_connections: int = 32
    hooks: list[tuple[str, Any]] = field(default_factory=list)
    read_only: bool = False
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
            connect_timeout=CONNECT_TIMEOUT_S,
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
        For the same reason a DynamoDB writer client writes ``BatchWriteItem`` bodies with orjson
        (:func:`install_wire_json`) instead of botocore's serializer, the next largest cost.
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
                client.meta.events.register("needs-retry", cap_connect_retries)
                if self.read_only:
                    install_read_only(client)
                for event, handler in self.hooks:
                    client.meta.events.register(event, handler)
                if not parameter_validation and service == "dynamodb":
                    install_wire_json(client)
                self._clients[key] = client
            return client

    @property
    def endpoint_label(self) -> str:
        """Where calls go, for error messages: the explicit endpoint, else the region's AWS endpoint."""
        return self.endpoint_url or f"AWS ({self.region_name})"

    def describe(self) -> dict[str, Any]:
        """Where clients point, for status lines and ``--json`` output."""
        return {"endpoint_url": self.endpoint_url, "region": self.region_name, "profile": self.profile,
                "read_only": self.read_only}
