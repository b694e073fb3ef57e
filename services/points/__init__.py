"""The points service: balances and the idempotent ledger."""
