"""The users service: users, refresh-token families, email tokens; auth, profiles, pictures."""
