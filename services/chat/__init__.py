"""The chat service: conversations, messages, push to every socket (replicas share Redis)."""
