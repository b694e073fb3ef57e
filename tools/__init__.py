"""Developer tools behind the Makefile: migrations, seed data, code generation drivers."""
