"""The import rules: each breach found with its code, and the safe ones fixed in place."""

from __future__ import annotations

import copy

import pytest

from datasets.schema.rules import RULES, import_rules_enforce, server_url_problem, text_fit


def valid_document() -> dict:
    """The smallest document that meets every rule."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "https://gateway.example.com"}],
        "security": [{"ApiKey": []}],
        "paths": {
            "/things/": {
                "get": {
                    "operationId": "list_things",
                    "summary": "List things",
                    "description": "Things.",
                    "parameters": [
                        {"name": "q", "in": "query", "description": "Text.", "schema": {}}
                    ],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/T"}}
                            },
                        }
                    },
                    "x-openai-isConsequential": False,
                }
            }
        },
        "components": {
            "schemas": {"T": {"type": "object", "properties": {"a": {"type": ["number", "null"]}}}},
            "securitySchemes": {"ApiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(document: dict) -> dict:
    return document["paths"]["/things/"]["get"]


def _set(path: tuple, value):
    def change(document: dict) -> None:
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _many_operations(document: dict) -> None:
    for number in range(31):
        document["paths"][f"/p{number}/"] = {
            "get": {**_operation(document), "operationId": f"o{number}"}
        }


def _duplicate_id(document: dict) -> None:
    document["paths"]["/other/"] = {"get": copy.deepcopy(_operation(document))}


def _header(document: dict) -> None:
    _operation(document)["parameters"].append({"name": "X-Key", "in": "header", "schema": {}})


def _second_scheme(document: dict) -> None:
    document["components"]["securitySchemes"]["Other"] = {
        "type": "apiKey",
        "in": "header",
        "name": "X",
    }


def _huge(document: dict) -> None:
    document["components"]["schemas"]["T"]["description"] = "x" * 1_000_000


BREACHES = [
    # (what is broken, change, rule code, fixed by import_rules_enforce)
    ("openapi 3.0", _set(("openapi",), "3.0.3"), "openapi_version", False),
    ("no server", _set(("servers",), []), "servers", False),
    ("two servers", _set(("servers",), [{"url": "https://a.com"}, {"url": "https://b.com"}]), "servers", False),
    ("http server", _set(("servers",), [{"url": "http://a.com"}]), "servers", False),
    ("31 operations", _many_operations, "too_many_operations", False),
    ("bad operationId", lambda d: _operation(d).update(operationId="list things"), "operation_id", False),
    ("long operationId", lambda d: _operation(d).update(operationId="x" * 65), "operation_id", False),
    ("no operationId", lambda d: _operation(d).pop("operationId"), "operation_id", False),
    ("duplicate operationId", _duplicate_id, "operation_id", False),
    ("long summary", lambda d: _operation(d).update(summary="s " * 150), "summary_length", True),
    ("long description", lambda d: _operation(d).update(description="d" * 300), "description_length", True),
    ("long parameter description", lambda d: _operation(d)["parameters"][0].update(description="p " * 350), "parameter_description_length", True),
    ("header parameter", _header, "header_parameter", True),
    ("two security schemes", _second_scheme, "security_scheme", False),
    ("no global security", _set(("security",), []), "security_scheme", False),
    ("no components.schemas", lambda d: d["components"].pop("schemas"), "components_schemas", True),
    ("object without properties", _set(("components", "schemas", "T"), {"type": "object"}), "object_properties", False),
    ("nullable object without properties", _set(("components", "schemas", "T"), {"type": ["object", "null"]}), "object_properties", False),
    ("oneOf with null", _set(("components", "schemas", "T", "properties", "a"), {"oneOf": [{"type": "number"}, {"type": "null"}]}), "nullable_union", False),
    ("anyOf with null", _set(("components", "schemas", "T", "properties", "a"), {"anyOf": [{"type": "number"}, {"type": "null"}]}), "nullable_union", False),
    ("$ref with a sibling", _set(("components", "schemas", "T", "properties", "a"), {"$ref": "#/components/schemas/T", "description": "x"}), "ref_siblings", False),
    ("array without items", _set(("components", "schemas", "T", "properties", "a"), {"type": "array"}), "array_items", False),
    ("nested array without items", _set(("components", "schemas", "T", "properties", "a"), {"type": "array", "items": {"type": "array"}}), "array_items", False),
    ("parameter array without items", lambda d: _operation(d)["parameters"][0].update(schema={"type": "array"}), "array_items", False),
    ("GET without isConsequential", lambda d: _operation(d).pop("x-openai-isConsequential"), "consequential", True),
    ("document over 1 MB", _huge, "document_too_large", False),
]  # fmt: skip


def test_valid_document_has_no_findings():
    assert import_rules_enforce(valid_document(), fix=False) == []


def test_every_rule_has_a_breach_case():
    assert {rule for _, _, rule, _ in BREACHES} == set(RULES)


@pytest.mark.parametrize(
    ("change", "rule", "fixable"),
    [case[1:] for case in BREACHES],
    ids=[case[0] for case in BREACHES],
)
def test_breach_is_found(change, rule, fixable):
    document = valid_document()
    change(document)
    found = import_rules_enforce(copy.deepcopy(document), fix=False)
    assert rule in {finding.rule for finding in found}
    assert all(finding.message for finding in found)


@pytest.mark.parametrize(
    ("change", "rule"),
    [(change, rule) for _, change, rule, fixable in BREACHES if fixable],
    ids=[name for name, _, _, fixable in BREACHES if fixable],
)
def test_fixable_breach_is_fixed_in_place(change, rule):
    document = valid_document()
    change(document)
    fixed = import_rules_enforce(document, fix=True)
    assert [finding.rule for finding in fixed if finding.fixed] == [rule]
    assert import_rules_enforce(document, fix=False) == []


@pytest.mark.parametrize(
    ("rule", "blocking"),
    [("too_many_operations", True), ("document_too_large", True), ("servers", False)],
)
def test_only_unusable_documents_are_blocking(rule, blocking):
    cases = {case[2]: case[1] for case in BREACHES}
    document = valid_document()
    cases[rule](document)
    finding = next(f for f in import_rules_enforce(document) if f.rule == rule)
    assert finding.blocking is blocking


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://gateway.example.com", None),
        ("https://gateway.example.com:443", None),
        ("https://gateway.example.com/prefix", None),
        ("http://gateway.example.com", "not https"),
        ("https://gateway.example.com:8443", "port 8443"),
        ("https://Gateway.Example.com", "upper-case"),
    ],
)
def test_server_url_problem(url, problem):
    found = server_url_problem(url)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("one two three four", 12, "one two…"),
        ("x" * 20, 10, "x" * 9 + "…"),
    ],
)
def test_text_fit(text, limit, expected):
    assert text_fit(text, limit) == expected
    assert len(text_fit(text, limit)) <= limit
