"""Example calls in the docs and the answer samples shown under them.

A ```sh block holds example calls (`curl` lines). A ```json block that follows it directly (only
blank lines between) is the answer to the last call of that block: the tests compare it with the
answer the demo gives, and `pytest tests/docs --update-docs` rewrites it from that answer.

A sample is the answer as pretty JSON (a part that fits on one line stays on one line), with the
same trim everywhere: a `results` list keeps its first `KEPT_RESULTS` entries, then `"…"`.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
BASE_URL = "http://127.0.0.1:8000/"
KEPT_RESULTS = 3
MORE = "…"
WIDTH = 96

_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Example:
    doc: Path
    index: int  # the example's position among the document's examples
    url: str
    # Where the answer sample's text is in the document (None: no sample).
    sample: tuple[int, int] | None = None


def examples(doc: Path) -> list[Example]:
    """The example calls of a document, in order, each with the span of its sample if any."""
    text = doc.read_text()
    found: list[Example] = []
    previous = None
    for block in _BLOCK.finditer(text):
        language, body = block.group(1), block.group(2)
        if language == "sh":
            found.extend(Example(doc, len(found) + n, url) for n, url in enumerate(_urls(body)))
        elif (
            language == "json"
            and previous is not None
            and previous.group(1) == "sh"
            and not text[previous.end() : block.start()].strip()
            and _urls(previous.group(2))
        ):
            last = found[-1]
            found[-1] = Example(doc, last.index, last.url, (block.start(2), block.end(2)))
        previous = block
    return found


def _urls(body: str) -> list[str]:
    return [
        next(word for word in shlex.split(line) if word.startswith(BASE_URL))
        for line in body.splitlines()
        if line.startswith("curl ")
    ]


def sample_text(answer) -> str:
    """The sample shown for an answer: trimmed, then pretty JSON ending with a newline."""
    return _render(_trimmed(answer), 0) + "\n"


def _trimmed(value):
    if isinstance(value, dict):
        trimmed = {key: _trimmed(item) for key, item in value.items()}
        results = trimmed.get("results")
        if isinstance(results, list) and len(results) > KEPT_RESULTS:
            trimmed["results"] = [*results[:KEPT_RESULTS], MORE]
        return trimmed
    if isinstance(value, list):
        return [_trimmed(item) for item in value]
    return value


def _render(value, level: int) -> str:
    compact = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or not value or len(compact) + 2 * level <= WIDTH:
        return compact
    if isinstance(value, dict):
        items = [
            f"{json.dumps(key, ensure_ascii=False)}: {_render(item, level + 1)}"
            for key, item in value.items()
        ]
        opening, closing = "{", "}"
    else:
        items = [_render(item, level + 1) for item in value]
        opening, closing = "[", "]"
    inner = "  " * (level + 1)
    return f"{opening}\n{inner}" + f",\n{inner}".join(items) + f"\n{'  ' * level}{closing}"


def sample_check(example: Example, answer, *, update: bool) -> None:
    """Assert that the document shows this answer; with `update`, write it there instead."""
    # Read again: an update of an earlier sample may have moved this one.
    current = examples(example.doc)[example.index]
    assert current.url == example.url and current.sample is not None
    text = example.doc.read_text()
    start, end = current.sample
    documented, real = text[start:end], sample_text(answer)
    if documented == real:
        return
    if update:
        example.doc.write_text(text[:start] + real + text[end:])
        return
    diff = "".join(
        difflib.unified_diff(
            documented.splitlines(keepends=True),
            real.splitlines(keepends=True),
            f"{example.doc.name} (documented)",
            "the demo's answer",
        )
    )
    raise AssertionError(
        f"The sample under {example.url} is not the demo's answer "
        f"(`pytest tests/docs --update-docs` rewrites it):\n{diff}"
    )
