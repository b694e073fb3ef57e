"""The catalog service: the taxonomy, the services and which provider offers which."""
