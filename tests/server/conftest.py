"""Fixtures of the server tests: a real PostgreSQL server for the PostgreSQL store."""

from tests.support.postgres import postgres_server, postgres_url  # noqa: F401
