"""HTTP foundation: app factory, middleware chain, problem+json, parsing helpers, OpenAPI."""
