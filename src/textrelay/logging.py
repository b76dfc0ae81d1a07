"""Structured (key=value) logs with secrets redacted."""

from __future__ import annotations

import logging
import re

# Anything that looks like a credential in a log line is masked, whatever logged it.
_PATTERNS = [
    (re.compile(r"(?i)(authorization:\s*(?:basic|bearer)\s+)[^\s,;\"']+"), r"\1[redacted]"),
    (re.compile(r"(?i)\b(auth_token|password|secret|api_key|token|client_secret)(\"?\s*[:=]\s*\"?)[^\s,;\"'&]+"),
     r"\1\2[redacted]"),
    (re.compile(r"trk_[A-Za-z0-9_-]{20,}"), "trk_[redacted]"),
    (re.compile(r"(//[^/:@\s]+:)[^@/\s]+@"), r"\1[redacted]@"),
]


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel("WARNING")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
