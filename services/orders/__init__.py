"""The orders service: orders, offers, jobs, reviews, currencies, the outbox (relayed to points)."""
