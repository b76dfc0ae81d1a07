"""Providers: one module per vendor behind the contract in ``base``."""
