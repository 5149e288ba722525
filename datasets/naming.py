"""API names for columns: snake_case, unique in the dataset, never a reserved query parameter."""

from __future__ import annotations

import re
import unicodedata

from datasets.engine.grammar import RESERVED_PARAMS


def snake_case(name: str) -> str:
    """'Order Date' -> 'order_date', 'CustomerEmail' -> 'customer_email', 'Größe' -> 'grosse'."""
    text = unicodedata.normalize("NFKD", name.replace("ß", "ss")).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    if not text:
        text = "column"
    if text[0].isdigit():
        text = f"c_{text}"
    # A name ending in `__x` would read as an operator: keep double underscores out.
    return re.sub(r"_{2,}", "_", text)[:60]


def api_names(physical_names: list[str]) -> list[str]:
    """One API name per physical column name, in order: snake_case, unique, reserved ones suffixed."""
    taken: set[str] = set()
    names = []
    for physical in physical_names:
        base = snake_case(physical)
        if base in RESERVED_PARAMS:
            base = f"{base}_"
        name, number = base, 2
        while name in taken:
            name = f"{base}_{number}"
            number += 1
        taken.add(name)
        names.append(name)
    return names
