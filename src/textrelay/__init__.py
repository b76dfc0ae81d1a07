"""textrelay: connects customer journeys to SMS, MMS and RCS providers."""

__version__ = "0.1.0"
