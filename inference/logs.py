"""The server's logs: JSON lines on stdout, which CloudWatch Logs reads field by field."""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

logger = logging.getLogger("freight.inference")


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message and structured extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` with the ``fields`` dict passed as ``extra``."""
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Send the server's logs to stdout as JSON lines (CloudWatch Logs reads them as such)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
