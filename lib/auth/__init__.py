"""Authentication: JWT issue and verify, role guards, password hashing."""
