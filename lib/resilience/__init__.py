"""Resilience: circuit breaker, retry with jittered backoff, rate limits."""
