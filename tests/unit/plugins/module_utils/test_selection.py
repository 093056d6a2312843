"""Unit tests of VM selection: validation and the LIST request it makes."""

import pytest

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ValidationError
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.selection import (
    Selection,
    check_label_selector,
    parse_max_unavailable,
)


@pytest.mark.parametrize(
    "selector",
    [
        "app=web",
        "app==web",
        "app!=web",
        "tier in (a,b)",
        "tier notin (a, b)",
        "canary",
        "!legacy",
        "kubevirt.io/os=windows2k22",
        "app=web,tier in (a,b),!legacy",
        "empty=",
    ],
)
def test_valid_selectors(selector):
    check_label_selector(selector, "label_selectors[0]")


@pytest.mark.parametrize(
    "selector",
    [
        "",
        "app=we b",
        "tier in ()",
        "tier in (a,b",
        "a b",
        "app=web,",
        "-bad=1",
        "app=" + "x" * 64,
        "Bad_Prefix/app=1",
        "tier in (a,b) extra",
    ],
)
def test_invalid_selectors(selector):
    with pytest.raises(ValidationError, match=r"label_selectors\[0\]"):
        check_label_selector(selector, "label_selectors[0]")


def test_selection_paths():
    sel = Selection.from_params({"namespace": "ns1", "label_selectors": ["a=b", "c"]})
    assert (
        sel.collection_path("kubevirt.io/v1", "virtualmachines")
        == "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachines"
    )
    assert sel.label_selector == "a=b,c"
    assert sel.field_selector is None
    everywhere = Selection.from_params({"all_namespaces": True})
    assert (
        everywhere.collection_path("kubevirt.io/v1", "virtualmachines")
        == "/apis/kubevirt.io/v1/virtualmachines"
    )
    one = Selection.from_params({"name": "vm1", "namespace": "ns1"})
    assert one.field_selector == "metadata.name=vm1"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "namespace: required unless all_namespaces"),
        ({"name": "vm1"}, "namespace: required when name"),
        ({"name": "VM_1", "namespace": "ns"}, "name: 'VM_1' is not a valid name"),
        ({"namespace": "Bad"}, "namespace: 'Bad'"),
        ({"namespace": "ns", "all_namespaces": True}, "cannot be combined with all_namespaces"),
        ({"name": "vm", "namespace": "ns", "label_selectors": ["a=b"]}, "name: cannot be combined"),
        ({"namespace": "ns", "exclude": ["Bad/vm"]}, r"exclude\[0\]"),
    ],
)
def test_invalid_selection(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        Selection.from_params(kwargs)


def test_exclude_by_name_or_namespaced_name():
    sel = Selection.from_params({"namespace": "ns", "exclude": ["vm1", "other/vm2"]})
    assert sel.is_excluded("ns", "vm1")
    assert sel.is_excluded("other", "vm2")
    assert not sel.is_excluded("ns", "vm2")


@pytest.mark.parametrize(
    "value, total, expected",
    [(1, 10, 1), ("3", 10, 3), ("25%", 10, 2), ("10%", 5, 1), ("100%", 7, 7), (2, 1, 2)],
)
def test_max_unavailable(value, total, expected):
    assert parse_max_unavailable(value, total) == expected


@pytest.mark.parametrize("value", [0, "0", "-1", "0%", "101%", "abc", True, None, "1.5"])
def test_max_unavailable_invalid(value):
    with pytest.raises(ValidationError, match="max_unavailable"):
        parse_max_unavailable(value, 10)
