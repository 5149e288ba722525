"""Hand-made XLSX archives for tests: bombs, lying dimensions and broken XML, small on disk."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/{strings}" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="xl/workbook.xml" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/officeDocument"/></Relationships>'
)
_WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="worksheets/sheet1.xml" Type="http://schemas.openxmlformats'
    '.org/officeDocument/2006/relationships/worksheet"/>'
    '<Relationship Id="rId2" Target="{strings_target}" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/sharedStrings"/></Relationships>'
)


def sheet_xml(rows: str, dimension: str | None = None) -> str:
    """A worksheet part around `rows` (the <row> elements), with an optional <dimension ref>."""
    declared = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">{declared}'
        f"<sheetData>{rows}</sheetData></worksheet>"
    )


def strings_xml(strings: Iterable[str]) -> str:
    """A shared strings part."""
    items = "".join(f"<si><t>{text}</t></si>" for text in strings)
    return f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}">{items}</sst>'


def write_workbook(
    path: Path,
    *,
    sheet: str | Iterable[bytes],
    strings: str | Iterable[bytes] = "",
    strings_part: str = "xl/sharedStrings.xml",
) -> Path:
    """An XLSX archive of one sheet; a part given as an iterable of chunks is streamed in."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _TYPES.format(strings=strings_part))
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            _WORKBOOK_RELS.format(strings_target=strings_part.removeprefix("xl/")),
        )
        for name, content in [("xl/worksheets/sheet1.xml", sheet), (strings_part, strings)]:
            if isinstance(content, str):
                archive.writestr(name, content or strings_xml([]))
                continue
            with archive.open(name, "w") as handle:
                for chunk in content:
                    handle.write(chunk)
    return path


def shared_strings_bomb(unpacked_mb: int = 200) -> Iterable[bytes]:
    """A shared strings part of `unpacked_mb` MB that packs about a thousand times smaller."""
    yield f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}">'.encode()
    chunk = b"<si><t>" + b"a" * (1024 * 1024 - 15) + b"</t></si>"
    for _ in range(unpacked_mb):
        yield chunk
    yield b"</sst>"


def simple_sheet(rows: int = 2) -> str:
    """A header row (id, name) and `rows` rows of inline values."""
    body = ['<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c>'
            '<c r="B1" t="inlineStr"><is><t>name</t></is></c></row>']  # fmt: skip
    for number in range(2, rows + 2):
        body.append(
            f'<row r="{number}"><c r="A{number}"><v>{number - 1}</v></c>'
            f'<c r="B{number}" t="inlineStr"><is><t>n{number}</t></is></c></row>'
        )
    return "".join(body)
