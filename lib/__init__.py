"""Shared runtime of the Fixup services: one module per concern."""
