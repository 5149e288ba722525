"""What MCP's list_datasets gives a model over the real mix of bench/schema_size.py (nine public
datasets' shapes, flights linked to airlines and airports): how many datasets come with their
columns (types, units, values, links), so that query_rows or aggregate can be called without
describe_dataset first, and how much of the response budget that takes.

Run: .venv/bin/python bench/mcp_catalog.py  (a throwaway data directory and SQLite file; ~10 s)

Measured on 2026-12-07:

    list_datasets: 9 datasets, 9 with their columns
    structuredContent 5,184 chars, text form 4,165 chars, budget 49,000 chars each
    columns said: 82 of 82, with 71 value lists or ranges and 3 links
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

import schema_size  # noqa: E402  (sets Django up on a throwaway data directory)
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from access import services  # noqa: E402
from access.tools import tool_call  # noqa: E402
from datasets.demo import demo_load  # noqa: E402
from datasets.policy import AccessPolicy  # noqa: E402
from datasets.selectors import dataset_spec  # noqa: E402

EVERYTHING = AccessPolicy(
    principal="bench", all_datasets=True, dataset_ids=frozenset(), row_filters={}
)


def main() -> None:
    call_command("migrate", verbosity=0)
    demo_load(rows=2000)
    mix = schema_size.linked(
        [
            dataset_spec("sales"),
            schema_size.gapminder(),
            schema_size.weather(),
            *schema_size.real_mix(),
        ]
    )
    with mock.patch.object(services, "datasets_published", return_value=mix):
        answer = tool_call(
            "list_datasets",
            {},
            policy=EVERYTHING,
            base_url=schema_size.SERVER,
            max_chars=settings.GATEWAY_MAX_RESPONSE_CHARS,
        )
    results = answer.structured["results"]
    listed = [item for item in results if item.get("columns")]
    said = " ".join(item.get("columns", "") for item in results)
    columns = sum(len(spec.columns) for spec in mix)
    named = sum(said.count(f"{column.name} (") for spec in mix for column in spec.columns)
    budget = max(settings.GATEWAY_MAX_RESPONSE_CHARS // 2 - 1000, 500)
    print(f"list_datasets: {len(results)} datasets, {len(listed)} with their columns")
    print(
        f"structuredContent {len(json.dumps(answer.structured)):,} chars, text form "
        f"{len(answer.text):,} chars, budget {budget:,} chars each"
    )
    ranges = said.count("; range ") + said.count("; values ")
    print(
        f"columns said: {min(named, columns)} of {columns}, with {ranges} value lists or ranges "
        f"and {said.count('refers to')} links"
    )


if __name__ == "__main__":
    main()
