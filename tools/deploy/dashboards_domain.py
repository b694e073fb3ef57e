"""The dashboards' domain panels: each service's "Domain" row of its lib.db.facts.Facts
counters, and the marketplace overview over every service (docs/operations.md)."""

from __future__ import annotations

from lib import registry
from tools.deploy.dashboard_parts import Panel, p, row


def per_hour(metric: str, selector: str = "", by: str = "") -> str:
    grouping = f" by ({by}) " if by else ""
    braces = f"{{{selector}}}" if selector else ""
    return f"sum{grouping}(increase({metric}{braces}[1h]))"


def domain_panels(name: str, s: str) -> list[Panel]:
    """The domain counters (lib.db.facts.Facts) service `name` owns, for selector `s`."""
    panels = {
        "users": [
            p(
                "Logins per hour",
                "short",
                **{"{{outcome}}": per_hour("users_logins_total", s, "outcome")},
            ),
            p(
                "Sessions revoked per hour",
                "short",
                **{
                    "{{reason}}": per_hour("users_revocations_total", s, "reason"),
                    "refresh token reused": per_hour("users_refresh_token_reuse_total", s),
                },
            ),
            p(
                "Mails per hour",
                "short",
                **{"{{outcome}}": per_hour("users_mails_total", s, "outcome")},
            ),
        ],
        "orders": [
            p("Marketplace funnel per hour", "short", **funnel(s)),
            p(
                "Jobs cancelled per hour",
                "short",
                **{"by {{role}}": per_hour("orders_jobs_cancelled_total", s, "role")},
            ),
            p(
                "Reviews per hour by rating",
                "short",
                **{"{{rating}}": per_hour("orders_reviews_total", s, "rating")},
            ),
        ],
        "chat": [p("Messages per hour", "short", **messages(s))],
        "points": [
            p("Points awarded per hour", "short", awarded=per_hour("points_awarded_total", s))
        ],
    }
    return panels.get(name, [])


def funnel(s: str = "") -> dict[str, str]:
    return {
        "orders": per_hour("orders_created_total", s),
        "offers": per_hour("orders_offers_made_total", s),
        "accepts (jobs)": per_hour("orders_offers_accepted_total", s),
        "jobs completed": per_hour("orders_jobs_completed_total", s),
        "reviews": per_hour("orders_reviews_total", s),
    }


def messages(s: str = "") -> dict[str, str]:
    return {
        "stored via {{via}}": per_hour("chat_messages_total", s, "via"),
        "delivered to sockets": per_hour("chat_messages_delivered_total", s),
    }


def domain_row(service: registry.Microservice) -> list[Panel]:
    panels = domain_panels(service.name, f'service="{service.name}"')
    return [row("Domain"), *panels] if panels else []


def marketplace() -> list[Panel]:
    """What a product owner and an incident commander ask first, over every service."""
    day = "[24h]"
    accepted = f"sum(increase(orders_offers_accepted_total{day}))"
    return [
        p("Funnel per hour: orders, offers, accepts, jobs, reviews", "short", **funnel()),
        p(
            "Conversion over 24 h",
            "percentunit",
            **{
                "orders accepted": (
                    f"{accepted} / clamp_min(sum(increase(orders_created_total{day})), 1)"
                ),
                "jobs completed of accepted": (
                    f"sum(increase(orders_jobs_completed_total{day})) / clamp_min({accepted}, 1)"
                ),
            },
        ),
        p(
            "Logins per hour",
            "short",
            **{"{{outcome}}": per_hour("users_logins_total", by="outcome")},
        ),
        p("Chat messages per hour", "short", **messages()),
        p("Points awarded per hour", "short", awarded=per_hour("points_awarded_total")),
        p(
            "Jobs cancelled per hour",
            "short",
            **{"by {{role}}": per_hour("orders_jobs_cancelled_total", by="role")},
        ),
    ]
