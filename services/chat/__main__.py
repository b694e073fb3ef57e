"""`python -m services.chat`: serve the chat API and its WebSockets."""

from lib.runner import run_service
from services.chat.settings import SERVICE, ChatSettings

if __name__ == "__main__":
    run_service(SERVICE, ChatSettings, "services.chat.app:create_app")
