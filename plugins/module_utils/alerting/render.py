# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rendering of rule groups per target: Kubernetes objects and Prometheus rule files.

Pure computation. The rule file is emitted by a small YAML writer of our own, so the output is
byte-for-byte stable (the file target compares text to decide whether to write) and needs no
PyYAML on the managed node: mappings are block style, multi-line strings literal blocks, other
strings double-quoted JSON strings (valid YAML).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.rules import public_groups

FILE_HEADER = "# Managed by Ansible (vmhealth.kvm.alerting_rule): local changes are overwritten.\n"
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def desired_object(target, name, namespace, labels, groups):
    """The AlertingRule or PrometheusRule to store."""
    metadata = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": target.group_version,
        "kind": target.kind,
        "metadata": metadata,
        "spec": {"groups": public_groups(groups)},
    }


def object_state(obj):
    """The part of a stored object the module manages: its labels and spec (for diff output)."""
    if not obj:
        return {}
    metadata = obj.get("metadata") or {}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "labels": metadata.get("labels") or {},
        },
        "spec": obj.get("spec") or {},
    }


def needs_update(stored, desired):
    """Whether the stored object differs from the desired one in spec or in a managed label.

    Labels set by others (not in the desired object) are left alone and do not count.
    """
    if (stored.get("spec") or {}) != desired["spec"]:
        return True
    stored_labels = (stored.get("metadata") or {}).get("labels") or {}
    return any(
        stored_labels.get(k) != v for k, v in (desired["metadata"].get("labels") or {}).items()
    )


def updated_object(stored, desired):
    """The body of a PUT: the stored object with the desired spec and labels and its resourceVersion."""
    body = {
        "apiVersion": stored.get("apiVersion", desired["apiVersion"]),
        "kind": stored.get("kind", desired["kind"]),
        "metadata": dict(stored.get("metadata") or {}),
        "spec": desired["spec"],
    }
    labels = dict(body["metadata"].get("labels") or {})
    labels.update(desired["metadata"].get("labels") or {})
    if labels:
        body["metadata"]["labels"] = labels
    for field in ("managedFields",):
        body["metadata"].pop(field, None)
    return body


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _key(key):
    return key if _PLAIN_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _block_ok(text):
    """A literal block keeps the text exactly when no line carries surrounding whitespace issues."""
    if "\n" not in text or "\r" in text or "\t" in text:
        return False
    lines = text.split("\n")
    return (
        not lines[0].startswith(" ")
        and not text.endswith("\n")
        and all(line == line.rstrip() for line in lines)
    )


def _emit(value, indent, out):
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            _emit_entry(pad + _key(key) + ":", item, indent, out)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                first = True
                for key, sub in item.items():
                    prefix = (pad + "- ") if first else (pad + "  ")
                    _emit_entry(prefix + _key(key) + ":", sub, indent + 2, out)
                    first = False
            else:
                _emit_entry(pad + "-", item, indent + 2, out)
    else:
        out.append(pad + _scalar(value))


def _emit_entry(head, value, indent, out):
    """One ``key:`` or ``-`` line followed by its value (inline or nested)."""
    if isinstance(value, dict):
        if value:
            out.append(head)
            _emit(value, indent + 2, out)
        else:
            out.append(head + " {}")
    elif isinstance(value, list):
        if value:
            out.append(head)
            _emit(value, indent + 2, out)
        else:
            out.append(head + " []")
    elif isinstance(value, str) and _block_ok(value):
        out.append(head + " |-")
        pad = " " * (indent + 2)
        out.extend((pad + line) if line else "" for line in value.split("\n"))
    else:
        out.append(head + " " + _scalar(value))


def to_yaml(data):
    """A small, deterministic YAML writer for dicts, lists, strings, ints and booleans."""
    out = []
    _emit(data, 0, out)
    return "\n".join(out) + "\n"


def rule_file_text(groups):
    """The Prometheus rule file for the groups."""
    return FILE_HEADER + to_yaml({"groups": public_groups(groups)})
