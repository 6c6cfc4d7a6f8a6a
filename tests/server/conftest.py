"""Fixtures of the server tests: real PostgreSQL and Redis servers, and a cluster of nodes behind nginx."""

from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401
from tests.support.programs import MissingProgram
from tests.support.redis import redis_url  # noqa: F401


@pytest.fixture
def cluster(tmp_path, postgres_url, redis_url) -> Iterator[Cluster]:  # noqa: F811 (the fixtures imported above)
    """Three nodes on this test's database and Redis, behind nginx; all stopped at the end."""
    try:
        nodes = Cluster(tmp_path, postgres_url, redis_url)
    except MissingProgram as error:
        pytest.fail(str(error), pytrace=False)
    with nodes:
        yield nodes
