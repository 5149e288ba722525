"""Scope: which datasets and rows a key may read."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from datasets.engine.spec import DatasetSpec


class HasApiKey(BasePermission):
    """Placeholder until keys land: everyone may call."""

    def has_permission(self, request, view) -> bool:
        return True


def dataset_in_scope(request, spec: DatasetSpec) -> bool:
    """May the caller's key read this dataset? (Out of scope is answered as 404.)"""
    return True


def row_filters(request, spec: DatasetSpec) -> dict[str, str]:
    """Equality filters (API column name -> value) the key imposes on every query of the dataset."""
    return {}
