"""Malaria Detect's command-line client: sign in, submit a sample's photographs, read its result and report."""

__version__ = "0.1.0"
