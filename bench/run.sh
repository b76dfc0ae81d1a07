#!/bin/sh
# The delivery benchmark: campaign throughput vs. the twilio SDK, and status-callback intake.
set -e
cd "$(dirname "$0")/.."
exec .venv/bin/python bench/send_campaign.py "$@"
