"""playbooks/vars/spec.yml, docs/playbooks.md and the playbooks agree on every variable."""

import json
import re

import pytest

from .playbook_helpers import PLAYBOOKS, REPO, SPEC

DOC = (REPO / "docs" / "playbooks.md").read_text()
ROW = re.compile(r"^\| `(vmhealth_[a-z0-9_]+)` \| (\w+) \| ([^|]+) \| ([^|]*) \| (.+) \|$", re.M)
TYPES = {"str", "int", "bool", "list", "dict", "int_or_percent"}
ALL = [v for section in SPEC.values() for v in section]


def _doc_rows():
    return {m.group(1): m.groups()[1:] for m in ROW.finditer(DOC)}


def _default_cell(var):
    if "default" not in var:
        return "required"
    return "`{}`".format(
        json.dumps(var["default"]).strip('"')
        if isinstance(var["default"], (str, bool, int))
        else json.dumps(var["default"])
    )


def _playbook_text():
    return "\n".join(p.read_text() for p in sorted(PLAYBOOKS.rglob("*.yml")))


def test_spec_is_well_formed():
    names = [v["name"] for v in ALL]
    assert len(names) == len(set(names))
    for var in ALL:
        assert var["name"].startswith("vmhealth_"), var
        assert var["type"] in TYPES, var
        assert set(var) <= {
            "name",
            "type",
            "default",
            "required",
            "choices",
            "min",
            "max",
            "separator",
            "secret",
        }, var


@pytest.mark.parametrize("var", ALL, ids=lambda v: v["name"])
def test_documented(var):
    rows = _doc_rows()
    assert var["name"] in rows, "{} is not in a table of docs/playbooks.md".format(var["name"])
    typ, default, allowed, description = (c.strip() for c in rows[var["name"]])
    assert typ == var["type"]
    expected_default = _default_cell(var)
    if var.get("default") == "":
        expected_default = '`""`'
    assert default == expected_default
    if "choices" in var:
        assert allowed == ", ".join("`{}`".format(c) for c in var["choices"])
    if "min" in var or "max" in var:
        assert allowed == "{}..{}".format(var.get("min", ""), var.get("max", ""))
    assert description


def test_no_undocumented_rows():
    assert set(_doc_rows()) == {v["name"] for v in ALL}


@pytest.mark.parametrize("var", ALL, ids=lambda v: v["name"])
def test_used_by_a_playbook(var):
    key = var["name"][len("vmhealth_") :]
    assert re.search(r"_vmhealth\.{}\b".format(key), _playbook_text()), (
        "{} is validated but never used".format(var["name"])
    )


def test_playbooks_use_only_validated_settings():
    keys = {v["name"][len("vmhealth_") :] for v in ALL}
    used = set(re.findall(r"_vmhealth\.([a-z0-9_]+)", _playbook_text()))
    assert used <= keys, used - keys
