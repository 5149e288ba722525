"""The shapes of the dataset list and a dataset's description."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from datasets.engine.spec import ColumnSpec, DatasetSpec
from datasets.engine.statistics import RANGED_TYPES
from datasets.measures import aggregation_default
from datasets.schema.guide import dataset_about


@extend_schema_field({"type": ["string", "number", "integer", "boolean"]})
class ValueField(serializers.JSONField):
    """A column value: a string, number or boolean (dates as ISO strings)."""


COLUMN_TYPES = ["string", "integer", "number", "boolean", "date", "datetime"]
AGGREGATIONS = ["sum", "average", "none"]


# An enum without drf-spectacular's "* `x` - x" list: the values say it all.
@extend_schema_field({"type": "string", "enum": COLUMN_TYPES})
class ColumnTypeField(serializers.CharField):
    """A column type."""


@extend_schema_field(
    {
        "type": "string",
        "enum": AGGREGATIONS,
        "description": "The statistic that fits the column: sum (revenue, units), average "
        "(prices, rates, temperatures) or none.",
    }
)
class AggregationField(serializers.CharField):
    """How a column adds up."""


class ColumnSerializer(serializers.Serializer):
    """A column as a client plans its call from it."""

    name = serializers.CharField()
    type = ColumnTypeField()
    description = serializers.CharField()
    unit = serializers.CharField(
        allow_null=True, help_text="What the numbers count or measure (mm, USD, %), when known."
    )
    identifies = serializers.CharField(
        allow_null=True,
        help_text='What one value stands for when the column identifies it ("one customer").',
    )
    references = serializers.CharField(
        allow_null=True,
        help_text="dataset.key_column whose rows the column's values name (airlines.carrier).",
    )
    instant = serializers.BooleanField(
        allow_null=True,
        help_text="On a datetime: true for moments, shown with their offset in the dataset's "
        "time_zone; false for wall-clock times.",
    )
    operators = serializers.ListField(child=serializers.CharField())
    enum = serializers.ListField(child=ValueField(), allow_null=True)
    min = ValueField(allow_null=True)
    max = ValueField(allow_null=True)
    distinct_count = serializers.IntegerField(
        allow_null=True, help_text="Distinct values (nulls aside)."
    )
    null_count = serializers.IntegerField(allow_null=True, help_text="Rows without a value.")
    unique = serializers.BooleanField(
        allow_null=True,
        help_text="No value occurs twice: the column identifies a row (an e-mail, an order id).",
    )
    aggregation = AggregationField()

    def to_representation(self, column: ColumnSpec) -> dict:
        ranged = column.type in RANGED_TYPES and not column.protected
        return {
            "name": column.name,
            "type": column.type,
            "description": column.description,
            "unit": column.unit or None,
            "identifies": column.identifies or None,
            "references": f"{column.references.slug}.{column.references.key}"
            if column.references is not None
            else None,
            "instant": column.instant if column.type == "datetime" else None,
            "operators": list(column.operators),
            "enum": list(column.enum) if column.enum is not None and not column.protected else None,
            "min": column.min if ranged else None,
            "max": column.max if ranged else None,
            "distinct_count": column.distinct_count,
            "null_count": column.null_count,
            "unique": column.unique,
            # A masked or hashed column is only counted (count_distinct), never summed.
            "aggregation": "none"
            if column.protected
            else column.aggregation or aggregation_default(column.name, column.type),
        }


class DatasetSummarySerializer(serializers.Serializer):
    """One entry of GET /api/v1/datasets/."""

    slug = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    row_count = serializers.IntegerField(allow_null=True)
    url = serializers.URLField()

    def to_representation(self, spec: DatasetSpec) -> dict:
        return {
            "slug": spec.slug,
            "title": spec.title,
            "description": dataset_about(spec),
            "row_count": spec.row_count,
            "url": f"{self.context['base_url']}/api/v1/datasets/{spec.slug}/",
        }


class DatasetListSerializer(serializers.Serializer):
    """GET /api/v1/datasets/."""

    count = serializers.IntegerField()
    results = DatasetSummarySerializer(many=True)


class DatasetSerializer(serializers.Serializer):
    """GET /api/v1/datasets/{slug}/."""

    slug = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    primary_key = serializers.CharField(allow_null=True)
    row_count = serializers.IntegerField(allow_null=True)
    time_zone = serializers.CharField(
        help_text="The zone dates are counted in (date filters and buckets of moments)."
    )
    columns = ColumnSerializer(many=True)

    def to_representation(self, spec: DatasetSpec) -> dict:
        return {
            "slug": spec.slug,
            "title": spec.title,
            "description": dataset_about(spec),
            "primary_key": spec.primary_key,
            "row_count": spec.row_count,
            "time_zone": spec.time_zone,
            "columns": [ColumnSerializer(column).data for column in spec.columns],
        }
