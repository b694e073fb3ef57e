"""`python -m services.catalog`: serve the catalog API."""

from lib.runner import run_service
from services.catalog.settings import SERVICE, CatalogSettings

if __name__ == "__main__":
    run_service(SERVICE, CatalogSettings, "services.catalog.app:create_app")
