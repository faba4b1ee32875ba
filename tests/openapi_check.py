"""Checking real RPC answers against the node's OpenAPI document: the schema given for a
path, method and status, `$ref`s resolved within the document, and every documented object
closed, so that a field the node sends without documenting it fails the check."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from tests.node.conftest import Reply


def _strict(schema: Any) -> Any:
    """The schema with every documented object closed (`unevaluatedProperties: false`), so an
    undocumented field fails; `if`/`then` clauses stay as they are (they test, not describe)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: v if k in ("if", "then") else _strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["unevaluatedProperties"] = False
    return out


class Spec:
    """The node's OpenAPI document and validators of its response schemas."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.components = _strict(doc["components"])

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": self.components, **schema}
        return Draft202012Validator(root)

    def check_schema(self, schema: dict[str, Any], value: Any, what: str) -> None:
        errors = sorted(self.validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
        assert not errors, f"{what}: {errors[0].message} at {list(errors[0].absolute_path)}"

    def response(self, template: str, method: str, status: int) -> dict[str, Any]:
        op = self.doc["paths"][template][method]
        assert str(status) in op["responses"], f"{method} {template} does not document status {status}"
        return op["responses"][str(status)]  # type: ignore[no-any-return]

    def check(self, template: str, method: str, r: Reply) -> None:
        """The answer `r` to `method template` has a documented status and matches its schema."""
        resp = self.response(template, method, r.status)
        ctype = r.headers.get("content-type", "").split(";")[0]
        assert ctype in resp["content"], f"{method} {template} {r.status}: {ctype} not documented"
        if ctype == "application/json":
            self.check_schema(resp["content"][ctype]["schema"], r.doc, f"{method} {template} {r.status}")
