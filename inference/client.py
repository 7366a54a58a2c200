"""A typed client for price quotes over boto3 ``sagemaker-runtime``, for AWS and local endpoints.

The same code talks to a SageMaker endpoint and to the local server (``endpoint_url``): both
answer ``InvokeEndpoint``. Loads are sent in requests under the payload limit; throttling,
server errors and dropped connections are retried with exponential backoff and jitter; a load
the model rejects raises :class:`QuoteRejectedError` with the field and the reason.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from processing.contracts import JSON_CONTENT_TYPE, MAX_PAYLOAD_BYTES

if TYPE_CHECKING:
    import boto3

DEFAULT_MAX_PAYLOAD_BYTES = MAX_PAYLOAD_BYTES - 64 * 1024  # a margin for the envelope
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServerError",
        "ModelNotReadyException",
        "InternalDependencyException",
    }
)


class QuoteError(Exception):
    """Quoting failed."""


class QuoteRejectedError(QuoteError):
    """The model rejected the request (a client mistake): fix the load named by ``field``."""

    def __init__(self, status: int, code: str, message: str, field: str | None) -> None:
        where = f" ({field})" if field else ""
        super().__init__(f"{status} {code}{where}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class QuoteUnavailableError(QuoteError):
    """The endpoint did not answer successfully within the allowed attempts."""


@dataclass(frozen=True)
class Quote:
    """A price quote for one load, in EUR excluding VAT, with the model that made it."""

    price_eur: float
    price_low_eur: float | None
    price_high_eur: float | None
    load_id: str | None
    model_version: str


class PriceQuoteClient:
    """Quotes loads through ``sagemaker-runtime.invoke_endpoint``.

    Give ``client`` (a boto3 ``sagemaker-runtime`` client) or let one be made from
    ``boto3_session`` with our timeouts; ``endpoint_url`` points it at a local server.
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        client: Any | None = None,
        boto3_session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        max_attempts: int = 4,
        base_delay_seconds: float = 0.1,
        max_delay_seconds: float = 2.0,
        connect_timeout_seconds: float = 2.0,
        read_timeout_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not endpoint_name:
            raise ValueError("endpoint_name must not be empty")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if max_payload_bytes < 1024:
            raise ValueError(f"max_payload_bytes must be at least 1024, got {max_payload_bytes}")
        self.endpoint_name = endpoint_name
        self.max_payload_bytes = max_payload_bytes
        self.max_attempts = max_attempts
        self.base_delay_seconds = base_delay_seconds
        self.max_delay_seconds = max_delay_seconds
        self._sleep = sleep
        self._jitter = jitter
        if client is None:
            client = _make_client(
                boto3_session, endpoint_url, connect_timeout_seconds, read_timeout_seconds
            )
        self._client = client

    def quote(self, load: Mapping[str, Any]) -> Quote:
        """Price one load (a dict of the request fields, see the README)."""
        return self.quote_many([load])[0]

    def quote_many(self, loads: Sequence[Mapping[str, Any]]) -> list[Quote]:
        """Price many loads, in as few requests under the payload limit as possible."""
        quotes: list[Quote] = []
        for batch in self._batches(loads):
            quotes.extend(self._invoke(batch))
        return quotes

    def _batches(self, loads: Sequence[Mapping[str, Any]]) -> Iterator[bytes]:
        # A JSON list: 2 bytes of brackets plus each load and a comma between loads.
        encoded: list[bytes] = []
        size = 2
        for index, load in enumerate(loads):
            item = orjson.dumps(load)
            if len(item) + 2 > self.max_payload_bytes:
                raise ValueError(
                    f"load {index} alone is {len(item)} bytes, over the payload limit of "
                    f"{self.max_payload_bytes} bytes"
                )
            if encoded and size + len(item) + 1 > self.max_payload_bytes:
                yield b"[" + b",".join(encoded) + b"]"
                encoded, size = [], 2
            encoded.append(item)
            size += len(item) + (1 if len(encoded) > 1 else 0)
        if encoded:
            yield b"[" + b",".join(encoded) + b"]"

    def _invoke(self, body: bytes) -> list[Quote]:
        from botocore.exceptions import (
            ClientError,
            ConnectionError,
            ConnectTimeoutError,
            ReadTimeoutError,
        )

        last_problem = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._client.invoke_endpoint(
                    EndpointName=self.endpoint_name,
                    Body=body,
                    ContentType=JSON_CONTENT_TYPE,
                    Accept=JSON_CONTENT_TYPE,
                )
                return _quotes(response["Body"].read())
            except ClientError as error:
                problem = _classify(error)
                if isinstance(problem, QuoteError):
                    raise problem from error
                last_problem = problem
            except (ConnectionError, ConnectTimeoutError, ReadTimeoutError) as error:
                last_problem = f"{type(error).__name__}: {error}"
            if attempt < self.max_attempts:
                delay = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
                self._sleep(delay * (0.5 + 0.5 * self._jitter()))
        raise QuoteUnavailableError(
            f"endpoint {self.endpoint_name!r} failed {self.max_attempts} attempt(s); "
            f"last: {last_problem}"
        )


def _make_client(
    session: boto3.Session | None,
    endpoint_url: str | None,
    connect_timeout: float,
    read_timeout: float,
) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # This client retries itself, with backoff, and knows which errors are worth it.
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    return (session or boto3.Session()).client(
        "sagemaker-runtime", endpoint_url=endpoint_url, config=config
    )


def _classify(error: Any) -> QuoteError | str:
    """A QuoteError to raise now, or a description of a retryable failure."""
    response = error.response
    code = response.get("Error", {}).get("Code", "")
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    message = response.get("Error", {}).get("Message", str(error))
    if code == "ModelError":
        original = int(response.get("OriginalStatusCode", 0) or 0)
        original_message = str(response.get("OriginalMessage", ""))
        if 400 <= original < 500 and original != 429:
            detail: dict[str, Any] = {}
            try:
                detail = orjson.loads(original_message).get("error", {})
            except (orjson.JSONDecodeError, AttributeError):
                detail = {}
            return QuoteRejectedError(
                original,
                str(detail.get("code", "client_error")),
                str(detail.get("message", original_message)),
                detail.get("field"),
            )
        return f"ModelError ({original or 'unknown status'}): {original_message[:200]}"
    if code in RETRYABLE_CODES or status >= 500 or status == 429:
        return f"{code or status}: {message}"
    return QuoteError(f"{code or status}: {message}")


def _quotes(body: bytes) -> list[Quote]:
    document = orjson.loads(body)
    version = str(document.get("model_version", "unknown"))
    return [
        Quote(
            price_eur=float(item["price_eur"]),
            price_low_eur=item.get("price_low_eur"),
            price_high_eur=item.get("price_high_eur"),
            load_id=item.get("load_id"),
            model_version=version,
        )
        for item in document["predictions"]
    ]
