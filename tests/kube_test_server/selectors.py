"""Label and field selectors with the grammar of k8s.io/apimachinery/pkg/labels and /fields.

Label selectors support ``=``, ``==``, ``!=``, ``in (..)``, ``notin (..)``, ``key``, ``!key``,
``key > n`` and ``key < n``. Errors raise :class:`SelectorError`; the server answers 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


class SelectorError(ValueError):
    """A selector that does not parse."""


def qualified_name_errors(key: str) -> list[str]:
    """validation.IsQualifiedName: '[prefix/]name' with a DNS-subdomain prefix."""
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        if len(prefix) > 253 or not _PREFIX_RE.match(prefix):
            return ["prefix part a lowercase RFC 1123 subdomain must be valid"]
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character, with an optional DNS subdomain prefix and '/'"
        ]
    if not name:
        return ["name part must be non-empty"]
    errs = []
    if len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _NAME_RE.match(name):
        errs.append(NAME_PART_MSG)
    return errs


def label_value_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _VALUE_RE.match(value):
        errs.append(LABEL_VALUE_MSG)
    return errs


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # one of: in, notin, exists, !, gt, lt   ("=" and "==" are stored as "in", "!=" as "notin")
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "in":
            return present and labels[self.key] in self.values
        if self.op == "notin":
            return not present or labels[self.key] not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if not present:
            return False
        try:
            have = int(labels[self.key])
        except ValueError:
            return False
        want = int(self.values[0])
        return have > want if self.op == "gt" else have < want


_SPECIAL = set("!=<>(),")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),<>":
            tokens.append(ch)
            i += 1
        elif ch == "=":
            if text.startswith("==", i):
                tokens.append("==")
                i += 2
            else:
                tokens.append("=")
                i += 1
        elif ch == "!":
            if text.startswith("!=", i):
                tokens.append("!=")
                i += 2
            else:
                tokens.append("!")
                i += 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            tokens.append(text[i:j])
            i = j
    return tokens


def _is_ident(tok: str | None) -> bool:
    return tok is not None and tok not in ("(", ")", ",", "=", "==", "!=", "!", "<", ">")


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse a label selector string; an empty string selects everything."""
    tokens = _tokenize(text)
    reqs: list[Requirement] = []
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def fail(found: str | None, expected: str) -> SelectorError:
        where = "EOS" if found is None else found
        return SelectorError(f"unable to parse requirement: found '{where}', expected: {expected}")

    while pos < len(tokens):
        tok = peek()
        if tok == "!":
            pos += 1
            key = peek()
            if not _is_ident(key):
                raise fail(key, "identifier after '!'")
            pos += 1
            req = Requirement(str(key), "!")
        elif _is_ident(tok):
            key = str(tok)
            pos += 1
            op_tok = peek()
            if op_tok is None or op_tok == ",":
                req = Requirement(key, "exists")
            elif op_tok in ("=", "==", "!="):
                pos += 1
                val = peek()
                if val is None or val == ",":
                    val = ""
                elif not _is_ident(val):
                    raise fail(val, "identifier for value")
                else:
                    pos += 1
                for err in label_value_errors(val):
                    raise SelectorError(
                        f"unable to parse requirement: values[0][{key}]: Invalid value: {val!r}: {err}"
                    )
                req = Requirement(key, "notin" if op_tok == "!=" else "in", (val,))
            elif op_tok in ("in", "notin"):
                pos += 1
                if peek() != "(":
                    raise fail(peek(), "'('")
                pos += 1
                values: list[str] = []
                expect_value = True
                while True:
                    cur = peek()
                    if cur is None:
                        raise fail(None, "')'")
                    if cur == ")":
                        pos += 1
                        break
                    if cur == ",":
                        if expect_value:
                            values.append("")
                        expect_value = True
                        pos += 1
                        continue
                    if not _is_ident(cur) or not expect_value:
                        raise fail(cur, "',' or ')'")
                    values.append(cur)
                    expect_value = False
                    pos += 1
                if not values:
                    raise SelectorError(
                        "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty"
                    )
                for val in values:
                    for err in label_value_errors(val):
                        raise SelectorError(
                            f"unable to parse requirement: Invalid value: {val!r}: {err}"
                        )
                req = Requirement(key, op_tok, tuple(values))
            elif op_tok in ("<", ">"):
                pos += 1
                val = peek()
                if not _is_ident(val):
                    raise fail(val, "integer value")
                pos += 1
                try:
                    int(str(val))
                except ValueError:
                    raise SelectorError(
                        f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {val}"
                    ) from None
                req = Requirement(key, "gt" if op_tok == ">" else "lt", (str(val),))
            else:
                raise fail(op_tok, "'=', '!=', '==', 'in', notin'")
        else:
            raise fail(tok, "'!', identifier")
        for err in qualified_name_errors(req.key):
            raise SelectorError(
                f"unable to parse requirement: key: Invalid value: {req.key!r}: {err}"
            )
        reqs.append(req)
        nxt = peek()
        if nxt is None:
            break
        if nxt != ",":
            raise fail(nxt, "','")
        pos += 1
        if peek() is None:
            raise fail(None, "identifier after ','")
    return reqs


def labels_match(reqs: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, escaped = [], [], False
    for ch in text:
        if escaped:
            cur.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if escaped:
        raise SelectorError(f"invalid selector: '{text}'; can't understand '{text}'")
    parts.append("".join(cur))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(text: str) -> list[FieldRequirement]:
    """Parse 'a=b,c!=d' (fields.ParseSelector); the caller checks which fields are supported."""
    reqs: list[FieldRequirement] = []
    if not text.strip():
        return reqs
    for part in _split_unescaped(text, ","):
        for op, negate in (("!=", True), ("==", False), ("=", False)):
            idx = part.find(op)
            if idx > 0:
                field, value = part[:idx].strip(), part[idx + len(op) :]
                reqs.append(FieldRequirement(field, _unescape(value), negate))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    return reqs


def fields_match(reqs: list[FieldRequirement], getter: Callable[[str], str]) -> bool:
    return all((getter(req.field) == req.value) != req.negate for req in reqs)
