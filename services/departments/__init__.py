"""The departments service: departments (name, address)."""
