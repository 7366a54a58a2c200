"""The embedded AWS of local mode: moto, in-process or as a threaded server, with the lake made.

Local mode needs no account: S3, Glue, the SageMaker API (pipelines, model registry,
endpoints), CloudWatch and EventBridge come from moto. Tests run it in-process
(``moto.mock_aws``); the demo runs its threaded server so that other processes and the AWS CLI
reach it on a port. When ``AWS_ENDPOINT_URL`` is set, that endpoint (any AWS-compatible
emulator already running) is used instead and nothing is started.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local.endpoint import free_port
from stages.names import DEFAULT_REGION, ResourceNames

if TYPE_CHECKING:
    import boto3

LOCAL_REGION = DEFAULT_REGION
LOCAL_ACCOUNT = "123456789012"  # moto's default account
ENV_ENDPOINT_URL = "AWS_ENDPOINT_URL"
# Dummy credentials: the emulator accepts any, boto3 insists on some.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


@dataclass(frozen=True)
class EmbeddedAws:
    """How to reach the embedded AWS: an endpoint URL (None when in-process) and the region."""

    endpoint_url: str | None
    region: str = LOCAL_REGION

    def session(self) -> boto3.Session:
        """A boto3 session for the emulator (clients still need ``client()`` below)."""
        import boto3

        return boto3.Session(
            region_name=self.region,
            aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
        )

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` talking to the emulator."""
        # Any service name: the typed stubs only know literal ones.
        session: Any = self.session()
        return session.client(service, endpoint_url=self.endpoint_url)

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 and the AWS CLI in child processes at the emulator."""
        variables = {
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }
        if self.endpoint_url:
            variables[ENV_ENDPOINT_URL] = self.endpoint_url
        return variables


def create_lake(aws: EmbeddedAws, names: ResourceNames) -> None:
    """Create the lake's buckets and Glue database (idempotent)."""
    s3 = aws.client("s3")
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    for bucket in names.buckets().values():
        if bucket not in existing:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": aws.region}
            )
    glue = aws.client("glue")
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):
        glue.create_database(DatabaseInput={"Name": names.glue_database})


@contextlib.contextmanager
def embedded_aws(
    names: ResourceNames,
    *,
    threaded_server: bool = True,
    environment: Mapping[str, str] | None = None,
) -> Iterator[EmbeddedAws]:
    """Start (or reuse) the emulator, create the lake, and yield how to reach it.

    ``threaded_server=False`` runs moto in-process (``mock_aws``): only this process sees it.
    """
    environment = os.environ if environment is None else environment
    external = environment.get(ENV_ENDPOINT_URL)
    if external:
        aws = EmbeddedAws(endpoint_url=external)
        create_lake(aws, names)
        yield aws
        return
    if not threaded_server:
        from moto import mock_aws

        with mock_aws():
            aws = EmbeddedAws(endpoint_url=None)
            create_lake(aws, names)
            yield aws
        return
    import logging

    from moto.server import ThreadedMotoServer

    # One access-log line per S3 request would drown the run's own output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        aws = EmbeddedAws(endpoint_url=f"http://127.0.0.1:{port}")
        create_lake(aws, names)
        yield aws
    finally:
        # moto keeps its state per process, not per server: without a reset, the next
        # embedded AWS of this process (a test module, a second demo) would start with it.
        _reset(f"http://127.0.0.1:{port}")
        server.stop()


def _reset(endpoint_url: str) -> None:
    import urllib.request

    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")
    with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=10):
        pass
