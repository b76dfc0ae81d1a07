"""Inbound messages: provider intake, keyword handling, consent changes, replies and events out."""
