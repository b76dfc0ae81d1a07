"""The simulator's Twilio Programmable Messaging (API 2010-04-01) personality."""

from textrelay.simulator.twilio.routes import routes, twilio_error_handler

__all__ = ["routes", "twilio_error_handler"]
