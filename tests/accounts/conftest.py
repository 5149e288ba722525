"""Fixtures of the OAuth tests: the key tests' tiny datasets, users and groups."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from tests.keys.conftest import make_dataset

PASSWORD = "a-long-Pass-phrase-42"


@pytest.fixture
def orders(db):
    return make_dataset("orders")


@pytest.fixture
def secrets_ds(db):
    return make_dataset("secrets")


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def group_factory(db):
    def make(name: str, user: User) -> Group:
        group = Group.objects.create(name=name)
        user.groups.add(group)
        return group

    return make
