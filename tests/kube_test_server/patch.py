"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) on plain JSON values."""

from __future__ import annotations

import copy
from typing import Any


class PatchFormatError(ValueError):
    """The patch document itself is malformed (the server answers 400)."""


class PatchApplyError(ValueError):
    """The patch does not apply to the object, e.g. a failed ``test`` op (the server answers 422)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch and return the result; inputs are not modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _decode_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchApplyError(f"invalid JSON pointer {pointer!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _array_index(token: str, length: int, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchApplyError(f"invalid array index {token!r}")
    idx = int(token)
    if idx > length or (idx == length and not allow_end):
        raise PatchApplyError(f"array index {idx} out of bounds")
    return idx


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for tok in tokens[:-1]:
        if isinstance(node, dict):
            if tok not in node:
                raise PatchApplyError(f"doc is missing path: /{'/'.join(tokens)}")
            node = node[tok]
        elif isinstance(node, list):
            node = node[_array_index(tok, len(node), False)]
        else:
            raise PatchApplyError(f"doc is missing path: /{'/'.join(tokens)}")
    return node


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchApplyError(f"doc is missing key: /{'/'.join(tokens)}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_array_index(last, len(parent), False)]
    raise PatchApplyError(f"doc is missing path: /{'/'.join(tokens)}")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), True), value)
    else:
        raise PatchApplyError(f"doc is missing path: /{'/'.join(tokens)}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    if not tokens:
        raise PatchApplyError("unable to remove the whole document")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchApplyError(
                f"remove operation does not apply: doc is missing path: /{'/'.join(tokens)}"
            )
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_array_index(last, len(parent), False))
    raise PatchApplyError(f"doc is missing path: /{'/'.join(tokens)}")


def _required(op: dict[str, Any], key: str) -> Any:
    if key not in op:
        raise PatchFormatError(f"operation {op.get('op')!r} missing {key!r} field")
    return op[key]


def json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch to a deep copy of ``doc`` and return it.

    Raises PatchFormatError for a malformed patch document and PatchApplyError when an
    operation does not apply (missing path, failed ``test``).
    """
    if not isinstance(ops, list):
        raise PatchFormatError(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    result = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict):
            raise PatchFormatError(
                "json: cannot unmarshal into Go value of type jsonpatch.Operation"
            )
        kind = op.get("op")
        path = _required(op, "path")
        if not isinstance(path, str):
            raise PatchFormatError("path must be a string")
        tokens = _decode_pointer(path)
        if kind == "add":
            result = _add(result, tokens, copy.deepcopy(_required(op, "value")))
        elif kind == "remove":
            result, _unused = _remove(result, tokens)
        elif kind == "replace":
            value = copy.deepcopy(_required(op, "value"))
            _get(result, tokens)  # must exist
            if not tokens:
                result = value
            else:
                result, _unused = _remove(result, tokens)
                result = _add(result, tokens, value)
        elif kind in ("move", "copy"):
            src = _decode_pointer(_required(op, "from"))
            if kind == "move":
                if tokens[: len(src)] == src and len(tokens) > len(src):
                    raise PatchApplyError("move operation does not apply: from is a prefix of path")
                result, value = _remove(result, src)
            else:
                value = copy.deepcopy(_get(result, src))
            result = _add(result, tokens, value)
        elif kind == "test":
            want = _required(op, "value")
            try:
                have = _get(result, tokens)
            except PatchApplyError:
                have = None
                if want is not None:
                    raise PatchApplyError(f"testing value {path} failed: test failed") from None
            if not _json_equal(have, want):
                raise PatchApplyError(f"testing value {path} failed: test failed")
        else:
            raise PatchFormatError(f"Unexpected kind: {kind}")
    return result


def _json_equal(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0 but True != 1
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def apply_merge(target: Any, applied: Any) -> Any:
    """Simplified server-side apply: deep-merge maps, replace lists and scalars, never delete."""
    if not isinstance(applied, dict) or not isinstance(target, dict):
        return copy.deepcopy(applied)
    result = copy.deepcopy(target)
    for key, value in applied.items():
        if value is None:
            continue
        result[key] = apply_merge(result.get(key), value)
    return result
