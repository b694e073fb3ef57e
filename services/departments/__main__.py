"""`python -m services.departments`: serve the departments API."""

from lib.runner import run_service
from services.departments.settings import SERVICE, DepartmentsSettings

if __name__ == "__main__":
    run_service(SERVICE, DepartmentsSettings, "services.departments.app:create_app")
