"""A Twilio-compatible simulator: textrelay's tests, benchmarks and offline demos talk to it over HTTP.

It serves Twilio's Programmable Messaging API (2010-04-01) and the Messaging v1 service lookups,
drives messages through their lifecycle with signed status callbacks, plays inbound messages on
demand, reproduces Twilio's test magic numbers, and injects faults (429, 5xx, dropped connections,
slowness, malformed answers). Its control API lives under ``/_sim`` (see :mod:`.control`).

Modules: ``app`` (assembly, ``run``), ``state`` (memory), ``faults``, ``webhooks`` (outgoing
HTTP), ``connection`` (dropping connections), ``control`` (``/_sim``), ``twilio/`` (the Twilio
personality: routes, validation, lifecycle and failure numbers, inbound, errors, resources),
``testing`` (an in-process server for tests).
"""

from textrelay.simulator.app import DEFAULT_ACCOUNT, create_app, run
from textrelay.simulator.state import CallbackOptions, SimulatorState

__all__ = ["DEFAULT_ACCOUNT", "CallbackOptions", "SimulatorState", "create_app", "run"]
