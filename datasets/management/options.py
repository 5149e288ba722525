"""Command-line options shared by the dataset commands."""

from __future__ import annotations

from django.core.management.base import CommandError

PII_MODES = ("mask", "hash", "hide")


def pii_options(values: list[str]) -> dict[str, str]:
    """{'email': 'mask'} from ['email=mask'] (--pii COLUMN=mask|hash|hide); CommandError otherwise."""
    modes = {}
    for value in values:
        column, _, mode = value.partition("=")
        if not column or mode not in PII_MODES:
            raise CommandError(
                f"Invalid --pii {value!r}: use COLUMN=mask, COLUMN=hash or COLUMN=hide."
            )
        modes[column] = mode
    return modes
