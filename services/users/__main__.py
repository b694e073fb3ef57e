"""`python -m services.users`: serve the users API."""

from lib.runner import run_service
from services.users.settings import SERVICE, UsersSettings

if __name__ == "__main__":
    run_service(SERVICE, UsersSettings, "services.users.app:create_app")
