"""Log setup: one JSON object per line, or plain text for development."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

# Attributes that every LogRecord has. Any other attribute came from `extra=` and is logged.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# A bridge token is "<key id>.<secret>". The key id is public and stays readable.
_TOKEN_SECRET = re.compile(r"(lbk_[0-9a-f]{16})\.[A-Za-z0-9_\-]+")
# Any other bearer value is hidden whole, but a token redacted above keeps its key id.
_BEARER_VALUE = re.compile(r"(Bearer\s+)(?!lbk_[0-9a-f]{16}\.\[)[^\s\"',]+", re.IGNORECASE)
REDACTED = "[redacted]"


def redact_secrets(text: str) -> str:
    """Replace credential secrets and bearer token values in a log line with "[redacted]"."""
    text = _TOKEN_SECRET.sub(rf"\1.{REDACTED}", text)
    return _BEARER_VALUE.sub(rf"\1{REDACTED}", text)


class JsonFormatter(logging.Formatter):
    """Formatter that writes a record as one JSON object with time, level, logger and message."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES}
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # Redacting the rendered line also covers secrets in arguments, extras and tracebacks.
        return redact_secrets(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """Formatter for plain-text development logs, with secrets redacted like JsonFormatter."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(super().format(record))


def configure_logging(level: str, log_format: Literal["json", "text"]) -> None:
    """Send the bridge's and uvicorn's logs to standard error in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
