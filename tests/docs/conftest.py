"""The documentation tests: the demo they run against, and `--update-docs`."""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--update-docs",
        action="store_true",
        default=False,
        help="Rewrite the answer samples in docs/ from the answers the demo gives.",
    )


@pytest.fixture(scope="session")
def update_docs(request) -> bool:
    return request.config.getoption("--update-docs", default=False)


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo `sales` dataset exactly as `make run` loads it, and a key for it."""
    from django.conf import settings

    from datasets.demo import demo_load
    from keys.services import api_key_issue

    data_dir = settings.GATEWAY_DATA_DIR
    settings.GATEWAY_DATA_DIR = tmp_path_factory.mktemp("demo")
    with django_db_blocker.unblock():
        dataset, _ = demo_load()
        issued = api_key_issue(name="docs", all_datasets=True, rate="100000/m")
        yield issued.raw_key
        issued.key.delete()
        dataset.delete()
    settings.GATEWAY_DATA_DIR = data_dir
