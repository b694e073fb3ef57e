"""Resilience: circuit breaker, retry with jittered backoff, timeouts, rate limits."""

from lib.resilience.breaker import BreakerState, CircuitBreaker
from lib.resilience.ratelimit import (
    Decision,
    FallbackRateLimiter,
    MemoryRateLimiter,
    RateLimiter,
    RateLimitStore,
    RedisRateLimiter,
    enforce,
    make_rate_limiter,
)
from lib.resilience.retry import retry, with_timeout

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "Decision",
    "FallbackRateLimiter",
    "MemoryRateLimiter",
    "RateLimitStore",
    "RateLimiter",
    "RedisRateLimiter",
    "enforce",
    "make_rate_limiter",
    "retry",
    "with_timeout",
]
