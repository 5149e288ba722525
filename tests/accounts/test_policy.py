"""How grants of a user and the user's groups combine into one access policy."""

from __future__ import annotations

import pytest

from accounts.models import AccessGrant, GrantRowFilter
from accounts.policy import policy_for_user


def _grant(
    *, user=None, group=None, datasets=(), all_datasets=False, filters=(), rate="", quota=None
):
    grant = AccessGrant.objects.create(
        user=user, group=group, all_datasets=all_datasets, rate=rate, quota_per_day=quota
    )
    grant.datasets.set(datasets)
    for dataset, column, value in filters:
        GrantRowFilter.objects.create(grant=grant, dataset=dataset, column=column, value=value)
    return grant


def test_user_without_any_grant_has_no_policy(alice):
    assert policy_for_user(alice, None) is None


def test_inactive_user_has_no_policy(alice, orders):
    _grant(user=alice, datasets=[orders])
    alice.is_active = False
    alice.save()
    assert policy_for_user(alice, None) is None


def test_two_groups_give_the_union_of_their_datasets(alice, orders, secrets_ds, group_factory):
    _grant(group=group_factory("sales", alice), datasets=[orders])
    _grant(group=group_factory("finance", alice), datasets=[secrets_ds])
    policy = policy_for_user(alice, None)
    assert policy.dataset_ids == {orders.pk, secrets_ds.pk}
    assert not policy.all_datasets


def test_a_grant_of_all_datasets_covers_every_dataset(alice, orders, group_factory):
    _grant(group=group_factory("everyone", alice), all_datasets=True)
    assert policy_for_user(alice, None).all_datasets


@pytest.mark.parametrize(
    ("grants", "expected"),
    [
        # (holder, row filter value or None for a grant without filter) -> the filter that applies
        ([("own", "EU")], {"region": "EU"}),
        ([("own", "EU"), ("a", None)], {}),  # a grant reads the dataset whole: unfiltered
        ([("a", None), ("b", "US")], {}),
        ([("own", "EU"), ("a", "US")], {"region": "EU"}),  # the user's own grant first
        ([("b", "US"), ("a", "APAC")], {"region": "APAC"}),  # then the groups by name
    ],
)
def test_row_filters_of_a_dataset_combine_by_the_documented_rule(
    alice, orders, group_factory, grants, expected
):
    for holder, value in grants:
        filters = [(orders, "region", value)] if value else []
        if holder == "own":
            _grant(user=alice, datasets=[orders], filters=filters)
        else:
            _grant(group=group_factory(holder, alice), datasets=[orders], filters=filters)
    policy = policy_for_user(alice, None)
    assert dict(policy.row_filters.get(orders.pk, {})) == expected


def test_a_filter_on_a_dataset_another_grant_does_not_cover_still_applies(
    alice, orders, secrets_ds, group_factory
):
    _grant(group=group_factory("a", alice), datasets=[orders], filters=[(orders, "region", "EU")])
    _grant(group=group_factory("b", alice), datasets=[secrets_ds])
    assert policy_for_user(alice, None).row_filters == {orders.pk: {"region": "EU"}}


@pytest.mark.parametrize(
    ("own", "groups", "expected"),
    [
        (("10/m", 100), [("600/m", None)], ("10/m", 100)),  # the user's own grant sets the budget
        (None, [("10/m", 100), ("1000/h", 50)], ("1000/h", 100)),  # each at its most generous
        (None, [("10/m", 100), ("", None)], ("", None)),  # the default 60/m, no quota
        (None, [("120/m", 5), ("", 10)], ("120/m", 10)),
    ],
)
def test_budget_is_the_own_grant_else_the_most_generous_group(
    alice, orders, group_factory, own, groups, expected
):
    if own:
        _grant(user=alice, datasets=[orders], rate=own[0], quota=own[1])
    for index, (rate, quota) in enumerate(groups):
        _grant(group=group_factory(f"g{index}", alice), datasets=[orders], rate=rate, quota=quota)
    policy = policy_for_user(alice, None)
    assert (policy.budget.rate, policy.budget.quota_per_day) == expected


def test_usage_names_the_user_and_the_app_and_the_budget_is_the_users(alice, orders):
    from oauth2_provider.models import Application

    _grant(user=alice, datasets=[orders])
    app = Application.objects.create(
        name="Claude", client_type="public", authorization_grant_type="authorization-code"
    )
    policy = policy_for_user(alice, app)
    assert policy.principal == f"u:{alice.pk}:{app.pk}"
    # Counted per user across apps; never a key id (key ids have no colon).
    assert policy.budget.name == f"u:{alice.pk}"
