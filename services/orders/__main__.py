"""`python -m services.orders`: serve the orders API (and run the outbox relay)."""

from lib.runner import run_service
from services.orders.settings import SERVICE, OrdersSettings

if __name__ == "__main__":
    run_service(SERVICE, OrdersSettings, "services.orders.app:create_app")
