"""Building and caching the served OpenAPI document for a selection of datasets."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from drf_spectacular.drainage import GENERATOR_STATS

from datasets.engine.spec import DatasetSpec
from gatewaysite.errors import ApiError
from gatewaysite.generations import ProcessCache


@dataclass(frozen=True)
class BuiltSchema:
    """A built document, its JSON, the import-rule findings and drf-spectacular's warnings."""

    document: dict
    json: bytes
    findings: tuple
    warnings: tuple[str, ...]

    @property
    def operation_count(self) -> int:
        """How many operations the document declares."""
        from datasets.schema.rules import operations

        return sum(1 for _ in operations(self.document))

    @property
    def blocking(self) -> list:
        """Findings that make the document unusable by the GPT Builder."""
        return [finding for finding in self.findings if finding.blocking]

    @property
    def problems(self) -> list:
        """Findings not fixed in the document."""
        return [finding for finding in self.findings if not finding.fixed]


# Memory the built documents of one process may hold: the least recently served go first, so
# requests for many `?datasets=` subsets or Host ports cannot grow a worker without bound.
SCHEMA_CACHE_BYTES = 32 * 1024 * 1024


def _footprint(built: BuiltSchema) -> int:
    # The parsed document costs a few times its JSON; this errs on the large side.
    return 4 * len(built.json)


# Dropped whenever a catalog change commits (any write to a source, dataset, column or privacy
# policy); settings are part of each key, so a changed setting builds a new document.
_built: ProcessCache[BuiltSchema] = ProcessCache(
    "catalog", max_bytes=SCHEMA_CACHE_BYTES, size=_footprint
)


def schema_build(*, specs: list[DatasetSpec], server_url: str) -> BuiltSchema:
    """Generate the document for these datasets (no cache)."""
    from datasets.schema.generator import GatewaySchemaGenerator

    generator = GatewaySchemaGenerator(specs=specs, server_url=server_url)
    # get_schema resets drf-spectacular's warning counters first; read them right after.
    document = generator.get_schema(request=None, public=True)
    warnings = tuple(GENERATOR_STATS._warn_cache) + tuple(GENERATOR_STATS._error_cache)
    # Compact: ChatGPT's limit is on bytes, and people read the document in /swagger/ or /redoc/.
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return BuiltSchema(
        document=document, json=body, findings=tuple(generator.findings), warnings=warnings
    )


def schema_cached(*, specs: list[DatasetSpec], server_url: str) -> BuiltSchema:
    """The document for these datasets, built once per catalog generation and settings.

    Keyed by the specs themselves, statistics included: a key whose row filters give it its own
    counts and values gets its own document, never one built for another caller.
    """
    key = (tuple(specs), server_url, settings.GATEWAY_SCHEMA_AUTH)
    return _built.get(key, lambda: schema_build(specs=specs, server_url=server_url))


# Whether each dataset's own document meets the import rules: a yes/no per spec, cheap to keep
# even when the document itself is too large for the cache.
_alone: ProcessCache[bool] = ProcessCache("catalog")


def servable_alone(*, spec: DatasetSpec, server_url: str) -> bool:
    """Does a document of this dataset alone meet the GPT Builder's import rules?"""
    key = (spec, server_url, settings.GATEWAY_SCHEMA_AUTH)
    return _alone.get(key, lambda: not schema_build(specs=[spec], server_url=server_url).blocking)


def datasets_select(*, requested: str | None, specs: list[DatasetSpec]) -> list[DatasetSpec]:
    """The datasets named by `?datasets=a,b` (all of `specs` when absent or blank)."""
    if not requested or not requested.strip():
        return list(specs)
    wanted = [slug.strip() for slug in requested.split(",") if slug.strip()]
    known = {spec.slug for spec in specs}
    unknown = [slug for slug in wanted if slug not in known]
    if unknown:
        raise ApiError(
            400,
            "unknown_dataset",
            f"Unknown dataset {', '.join(repr(slug) for slug in unknown)} in ?datasets=. "
            f"Valid datasets: {', '.join(sorted(known)) or 'none'}.",
        )
    chosen = set(wanted)
    return [spec for spec in specs if spec.slug in chosen]


def blocking_error(built: BuiltSchema, *, specs: list[DatasetSpec]) -> ApiError | None:
    """The 400 answered instead of a document the GPT Builder cannot import, or None."""
    blocking = built.blocking
    if not blocking:
        return None
    names = ", ".join(spec.slug for spec in specs[:12])
    return ApiError(
        400,
        blocking[0].rule,
        f"{blocking[0].message} Datasets in this schema: {names}"
        f"{', …' if len(specs) > 12 else ''}. Example: /openapi.json?datasets="
        f"{','.join(spec.slug for spec in specs[:3])}",
    )
