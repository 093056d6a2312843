"""Structural OpenAPI v3 schemas (CRDs) turned into strict JSON Schema validators.

The real API server prunes fields that a structural schema does not declare (or rejects them with
``fieldValidation=Strict``). This test double is deliberately always as strict as ``Strict``: every
object schema that declares ``properties`` and is not ``x-kubernetes-preserve-unknown-fields`` gets
``additionalProperties: false``, so unknown fields are answered with 422 naming the field.

Also handled: ``x-kubernetes-int-or-string``, ``nullable`` (non-nullable ``null`` values are pruned
like the real server does), ``default`` (applied to objects that are present), ``format`` int32 /
int64 / date-time, ``x-kubernetes-list-type: set`` (unique items) and ``map`` (unique keys),
``x-kubernetes-embedded-resource``. ``x-kubernetes-validations`` (CEL) rules are NOT evaluated.
"""

from __future__ import annotations

import copy
import datetime
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import FieldError, go_value

try:  # the C loader parses the 360 KB VirtualMachine CRD ~10x faster
    _YAML_LOADER: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _YAML_LOADER = yaml.SafeLoader

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CRD_DIR = REPO_ROOT.parent / "shared" / "crds"
FALLBACK_DIR = Path(__file__).resolve().parent / "fallback_schemas"
CRD_DIR_ENV = "VMHEALTH_CRD_DIR"

# CRD name -> fallback file (our own, smaller schemas used when the real CRD file is absent)
FALLBACK_FILES = {
    "virtualmachines.kubevirt.io": "virtualmachines.yaml",
    "virtualmachineinstances.kubevirt.io": "virtualmachineinstances.yaml",
    "prometheusrules.monitoring.coreos.com": "prometheusrules.yaml",
    "alertingrules.monitoring.openshift.io": "alertingrules.yaml",
}

_STR = {"type": "string"}
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_TIME = {"type": ["string", "null"], "format": "date-time"}

# ObjectMeta as the API server decodes it; the CRD schemas only say `metadata: {type: object}`.
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": _STR,
        "generateName": _STR,
        "namespace": _STR,
        "selfLink": _STR,
        "uid": _STR,
        "resourceVersion": _STR,
        "generation": {"type": "integer", "format": "int64"},
        "creationTimestamp": _TIME,
        "deletionTimestamp": _TIME,
        "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
        "labels": _STR_MAP,
        "annotations": _STR_MAP,
        "ownerReferences": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["apiVersion", "kind", "name", "uid"],
                "properties": {
                    "apiVersion": _STR,
                    "kind": _STR,
                    "name": _STR,
                    "uid": _STR,
                    "controller": {"type": "boolean"},
                    "blockOwnerDeletion": {"type": "boolean"},
                },
            },
        },
        "finalizers": {"type": "array", "items": _STR},
        "managedFields": {"type": "array", "items": {"type": "object"}},
    },
}

_SCALAR_KEYWORDS = (
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "required",
    "format",
)


def resolve_crd_dir(crd_dir: str | os.PathLike[str] | None) -> Path:
    """Explicit argument, else $VMHEALTH_CRD_DIR, else <repo root>/../shared/crds."""
    if crd_dir is not None:
        return Path(crd_dir)
    env = os.environ.get(CRD_DIR_ENV)
    return Path(env) if env else DEFAULT_CRD_DIR


def go_regex_to_python(pattern: str) -> str:
    """RE2 accepts inline flags anywhere and \\z; Python wants global flags first and \\Z."""
    for flag in ("(?i)", "(?s)", "(?m)"):
        if flag in pattern and not pattern.startswith(flag):
            pattern = flag + pattern.replace(flag, "")
    return pattern.replace("\\z", "\\Z")


def convert(node: dict[str, Any], in_junctor: bool = False) -> dict[str, Any]:
    """Convert one structural OpenAPI v3 schema node into a strict JSON Schema node."""
    out: dict[str, Any] = {}
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    typ = node.get("type")
    types: list[str] = []
    if node.get("x-kubernetes-int-or-string"):
        types = ["integer", "string"]
    elif typ:
        types = [typ]
    if types and node.get("nullable"):
        types.append("null")
    if types:
        out["type"] = types[0] if len(types) == 1 else types
    for key in _SCALAR_KEYWORDS:
        if key in node:
            out[key] = node[key]
    if "pattern" in out:
        out["x-go-pattern"] = out["pattern"]  # shown in messages, as the real server does
        out["pattern"] = go_regex_to_python(out["pattern"])
    # OpenAPI 3.0 uses boolean exclusiveMinimum/Maximum; JSON Schema draft 7 uses numbers
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(key) is True and bound in out:
            out[key] = out.pop(bound)
    props = dict(node.get("properties") or {})
    if node.get("x-kubernetes-embedded-resource"):
        props.setdefault("apiVersion", _STR)
        props.setdefault("kind", _STR)
        props.setdefault(
            "metadata", {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        )
    if props:
        out["properties"] = {name: convert(sub) for name, sub in props.items()}
    addl = node.get("additionalProperties")
    if isinstance(addl, dict):
        out["additionalProperties"] = convert(addl)
    elif isinstance(addl, bool):
        out["additionalProperties"] = addl
    elif typ == "object" and not preserve and not in_junctor:
        # strict: an object schema without preserve-unknown-fields declares all its fields
        out["additionalProperties"] = False
    if "items" in node:
        out["items"] = convert(node["items"])
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "set":
        out["uniqueItems"] = True
    elif list_type == "map" and node.get("x-kubernetes-list-map-keys"):
        out["x-list-map-keys"] = list(node["x-kubernetes-list-map-keys"])
    if not node.get("x-kubernetes-int-or-string"):
        for junctor in ("allOf", "anyOf", "oneOf"):
            if junctor in node:
                out[junctor] = [convert(sub, in_junctor=True) for sub in node[junctor]]
        if "not" in node:
            out["not"] = convert(node["not"], in_junctor=True)
    return out


def _strip(node: Any) -> Any:
    """Drop documentation from a schema to keep it small in memory."""
    if isinstance(node, dict):
        return {
            k: _strip(v)
            for k, v in node.items()
            if k not in ("description", "example", "externalDocs", "title", "x-kubernetes-map-type")
        }
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _format(
    validator: Any, fmt: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if fmt == "int32" and isinstance(instance, int) and not isinstance(instance, bool):
        if not -(2**31) <= instance < 2**31:
            yield jsonschema.ValidationError(f"{instance} is not an int32", validator="format")
    elif fmt == "int64" and isinstance(instance, int) and not isinstance(instance, bool):
        if not -(2**63) <= instance < 2**63:
            yield jsonschema.ValidationError(f"{instance} is not an int64", validator="format")
    elif fmt == "date-time" and isinstance(instance, str):
        ok = bool(_RFC3339.match(instance))
        if ok:
            try:
                datetime.datetime.fromisoformat(
                    instance.replace("Z", "+00:00").replace("z", "+00:00")
                )
            except ValueError:
                ok = False
        if not ok:
            yield jsonschema.ValidationError(f"{instance!r} is not a date-time", validator="format")


def _list_map_keys(
    validator: Any, keys: list[str], instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    if not isinstance(instance, list):
        return
    seen: set[str] = set()
    for index, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        ident = repr([item.get(k) for k in keys])
        if ident in seen:
            err = jsonschema.ValidationError(
                "duplicate entries for key", validator="x-list-map-keys"
            )
            err.path.append(index)
            err.instance = {k: item.get(k) for k in keys if k in item}
            yield err
        seen.add(ident)


# Draft 7 plus our keywords; `format` is replaced so int32/int64/date-time are always checked
KubeValidator = jsonschema.validators.extend(
    jsonschema.Draft7Validator, {"format": _format, "x-list-map-keys": _list_map_keys}
)

_JSON_TYPE = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_TYPE.get(type(value), type(value).__name__)


def field_path(parts: list[Any] | tuple[Any, ...], prefix: str = "") -> str:
    """Render a path like the API server: ``spec.groups[0].rules[1].for``."""
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_$-]+", str(part)):
            out += ("." if out else "") + str(part)
        else:
            out += f"[{part}]"
    return out


def _errors_from(err: jsonschema.ValidationError, prefix: str) -> list[FieldError]:
    path = field_path(list(err.absolute_path), prefix)
    kw, want, inst = err.validator, err.validator_value, err.instance
    if kw == "additionalProperties" and want is False and isinstance(inst, dict):
        declared = err.schema.get("properties", {})
        return [FieldError("unknown", field_path([k], path)) for k in inst if k not in declared]
    if kw == "required" and isinstance(inst, dict):
        return [FieldError("required", field_path([k], path)) for k in want if k not in inst]
    if kw == "type":
        wanted = [t for t in (want if isinstance(want, list) else [want]) if t != "null"]
        actual = _type_name(inst)
        return [
            FieldError(
                "type",
                path,
                actual,
                f'{path} in body must be of type {",".join(wanted)}: "{actual}"',
            )
        ]
    if kw == "enum":
        return [
            FieldError(
                "notsupported",
                path,
                inst,
                "supported values: " + ", ".join(go_value(v) for v in want),
            )
        ]
    if kw == "pattern":
        shown = err.schema.get("x-go-pattern", want)
        return [FieldError("invalid", path, inst, f"{path} in body should match '{shown}'")]
    if kw == "minLength":
        return [
            FieldError(
                "invalid", path, inst, f"{path} in body should be at least {want} chars long"
            )
        ]
    if kw == "maxLength":
        return [FieldError("toolong", path, detail=f"may not be more than {want} bytes")]
    if kw == "minItems":
        return [
            FieldError(
                "invalid", path, len(inst), f"{path} in body should have at least {want} items"
            )
        ]
    if kw == "maxItems":
        return [FieldError("toomany", path, len(inst), f"must have at most {want} items")]
    if kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {
            "minimum": "greater than or equal to",
            "maximum": "less than or equal to",
            "exclusiveMinimum": "greater than",
            "exclusiveMaximum": "less than",
        }[kw]
        return [FieldError("invalid", path, inst, f"{path} in body should be {words} {want}")]
    if kw == "multipleOf":
        return [FieldError("invalid", path, inst, f"{path} in body should be a multiple of {want}")]
    if kw == "uniqueItems" and isinstance(inst, list):
        seen: list[Any] = []
        for index, item in enumerate(inst):
            if item in seen:
                return [FieldError("duplicate", field_path([index], path), item)]
            seen.append(item)
    if kw == "x-list-map-keys":
        return [FieldError("duplicate", path, inst)]
    if kw == "format":
        return [
            FieldError("invalid", path, inst, f'{path} in body must be of type {want}: "{inst}"')
        ]
    return [FieldError("invalid", path, inst, err.message)]


class StructuralValidator:
    """A compiled validator for one kind (a CRD schema or one of our own schemas)."""

    def __init__(self, openapi: dict[str, Any], source: str) -> None:
        self.source = source
        self.openapi = _strip(openapi)
        converted = convert(self.openapi)
        converted.setdefault("properties", {})["metadata"] = OBJECT_META
        # the API server fills apiVersion/kind; they are validated against the endpoint elsewhere
        self.jsonschema = converted
        self._validator = KubeValidator(converted)

    def sub_schema(self, *path: str) -> dict[str, Any] | None:
        """The raw (structural) schema at a property path, e.g. ('spec', 'template', 'spec')."""
        node: dict[str, Any] | None = self.openapi
        for name in path:
            node = (node or {}).get("properties", {}).get(name)
        return node

    def prepare(self, obj: dict[str, Any]) -> None:
        """Prune non-nullable nulls and apply defaults in place, like the API server before validation."""
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            for key in [k for k, v in meta.items() if v is None]:
                del meta[key]
        _prepare(self.openapi, obj, top=True)

    def validate(self, obj: Any, prefix: str = "") -> list[FieldError]:
        errors: list[FieldError] = []
        for err in self._validator.iter_errors(obj):
            errors.extend(_errors_from(err, prefix))
        errors.sort(key=lambda e: e.field)
        return errors


def _prepare(schema: dict[str, Any], value: Any, top: bool = False) -> None:
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        for key in list(value):
            if top and key == "metadata":
                continue
            sub = props.get(key) or (addl if isinstance(addl, dict) else None)
            item = value[key]
            if item is None:
                if sub is not None and (
                    sub.get("nullable") or sub.get("x-kubernetes-preserve-unknown-fields")
                ):
                    continue
                if sub is None and preserve:
                    continue
                del value[key]
            elif sub is not None:
                _prepare(sub, item)
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _prepare(schema["items"], item)


@functools.lru_cache(maxsize=32)
def _load_cached(path: str, mtime: float) -> StructuralValidator:
    with open(path, encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=_YAML_LOADER)
    if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
        versions = doc["spec"]["versions"]
        version = next((v for v in versions if v.get("storage")), versions[0])
        openapi = version["schema"]["openAPIV3Schema"]
    else:
        openapi = doc.get("openAPIV3Schema", doc)
    return StructuralValidator(openapi, path)


def load_validator(path: Path) -> StructuralValidator:
    """Load (and cache per file version) a validator from a CRD or a bare schema file."""
    return _load_cached(str(path), path.stat().st_mtime)


def builtin_validator(openapi: dict[str, Any], name: str) -> StructuralValidator:
    return StructuralValidator(openapi, f"builtin:{name}")


class SchemaSet:
    """Validators for the custom resources: the real CRDs when found, else our fallback schemas."""

    def __init__(
        self, crd_dir: str | os.PathLike[str] | None = None, fallback_only: bool = False
    ) -> None:
        self.crd_dir = resolve_crd_dir(crd_dir)
        self.validators: dict[str, StructuralValidator] = {}
        self.sources: dict[str, str] = {}
        for crd_name, fallback in FALLBACK_FILES.items():
            real = self.crd_dir / f"{crd_name}.yaml"
            if not fallback_only and real.is_file():
                self.validators[crd_name] = load_validator(real)
                self.sources[crd_name] = "crd"
            else:
                self.validators[crd_name] = load_validator(FALLBACK_DIR / fallback)
                self.sources[crd_name] = "fallback"

    def get(self, crd_name: str) -> StructuralValidator | None:
        return self.validators.get(crd_name)
