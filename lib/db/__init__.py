"""Database access: pools, transactions, and the runtime of the generated repositories."""
