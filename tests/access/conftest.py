"""The schema views and the Connect page are tested over the schema tests' catalog."""

from tests.datasets.schema.conftest import catalog, demo, public_url, raw_key, staff  # noqa: F401
