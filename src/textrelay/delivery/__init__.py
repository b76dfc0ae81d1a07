"""Delivery: the durable outbox, the worker that sends from it, retries, rate limits,
reconciliation of unknown outcomes, and delivery receipts."""
