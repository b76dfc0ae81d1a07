"""Prometheus metrics, served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("textrelay_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
MESSAGES_ACCEPTED = Counter("textrelay_messages_accepted_total", "Messages accepted for sending", ["channel"])
MESSAGE_RESULTS = Counter("textrelay_message_results_total", "Messages reaching a status", ["status"])
SEND_ATTEMPTS = Counter("textrelay_send_attempts_total", "Provider send attempts", ["vendor", "outcome"])
SEND_LATENCY = Histogram("textrelay_send_seconds", "Provider send latency", ["vendor"])
RECEIPTS = Counter("textrelay_receipts_total", "Delivery receipts received", ["vendor", "result"])
INBOUND = Counter("textrelay_inbound_total", "Inbound messages received", ["vendor", "category"])
