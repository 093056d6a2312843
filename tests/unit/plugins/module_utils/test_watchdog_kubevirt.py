"""Unit tests of qemu_watchdog's KubeVirt policy (pure: template specs in, template specs out)."""

import copy

import pytest

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import VmRejected
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.fleet import (
    merge_patch,
    plan_template_spec,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.common import WatchdogSpec
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.kubevirt import (
    WatchdogPolicy,
    build_policy,
    current_watchdog,
)


def policy(**kw):
    params = {"platform": "kubevirt", "state": "present", "model": "auto", "restart": "never"}
    params.update(kw)
    return WatchdogPolicy(WatchdogSpec.from_params(params))


def vm(spec=None, labels=None):
    return {
        "metadata": {"name": "vm1", "namespace": "ns", "labels": labels or {}},
        "spec": {
            "template": {
                "spec": spec if spec is not None else {"domain": {"devices": {"disks": []}}}
            }
        },
    }


def test_create_on_amd64():
    desired, before, after, action = plan_template_spec(
        policy(), {"domain": {"devices": {"disks": []}}}
    )
    assert action == "created" and before == {}
    assert desired["domain"]["devices"] == {
        "disks": [],
        "watchdog": {"name": "watchdog", "i6300esb": {"action": "reset"}},
    }
    assert after == {"watchdog": {"name": "watchdog", "i6300esb": {"action": "reset"}}}


def test_s390x_gets_diag288():
    desired, _unused1, _unused2, _unused3 = plan_template_spec(
        policy(action="poweroff"), {"architecture": "s390x"}
    )
    assert desired["domain"]["devices"]["watchdog"] == {
        "name": "watchdog",
        "diag288": {"action": "poweroff"},
    }


def test_stored_default_action_is_equal_and_kept_as_stored():
    spec = {"domain": {"devices": {"watchdog": {"name": "mine", "i6300esb": {}}}}}
    desired, _unused1, _unused2, action = plan_template_spec(policy(action="reset"), spec)
    assert action == "unchanged" and desired == spec


def test_update_keeps_name_and_other_fields_and_patch_is_minimal():
    spec = {
        "domain": {
            "cpu": {"cores": 2},
            "devices": {"watchdog": {"name": "mine", "i6300esb": {"action": "reset"}}},
        }
    }
    desired, before, after, action = plan_template_spec(policy(action="poweroff"), spec)
    assert action == "updated"
    assert desired["domain"]["devices"]["watchdog"] == {
        "name": "mine",
        "i6300esb": {"action": "poweroff"},
    }
    assert merge_patch(spec, desired) == {
        "domain": {"devices": {"watchdog": {"i6300esb": {"action": "poweroff"}}}}
    }
    renamed, _unused1, _unused2, _unused3 = plan_template_spec(policy(watchdog_name="wd0"), spec)
    assert renamed["domain"]["devices"]["watchdog"]["name"] == "wd0"


def test_model_change_replaces_the_model_key():
    spec = {
        "architecture": "amd64",
        "domain": {"devices": {"watchdog": {"name": "w", "diag288": {"action": "reset"}}}},
    }
    desired, _unused1, _unused2, action = plan_template_spec(policy(), spec)
    assert action == "updated"
    assert merge_patch(spec, desired)["domain"]["devices"]["watchdog"] == {
        "diag288": None,
        "i6300esb": {"action": "reset"},
    }


def test_absent_removes_and_unchanged_creates_nothing():
    spec = {"domain": {"devices": {"watchdog": {"name": "w", "i6300esb": {}}, "disks": []}}}
    desired, _unused1, after, action = plan_template_spec(policy(state="absent"), spec)
    assert action == "removed" and after == {} and "watchdog" not in desired["domain"]["devices"]
    empty = {}
    desired, _unused1, _unused2, action = plan_template_spec(policy(state="absent"), empty)
    assert action == "unchanged" and desired == {}


def test_panic_devices():
    spec = {"domain": {"devices": {"panicDevices": [{"model": "isa"}, {"model": "hyperv"}]}}}
    desired, before, after, action = plan_template_spec(
        policy(state="absent", panic_device="hyperv"), spec
    )
    assert action == "updated" and desired["domain"]["devices"]["panicDevices"] == [
        {"model": "hyperv"}
    ]
    assert before == {"panicDevices": [{"model": "isa"}, {"model": "hyperv"}]}
    desired, _unused1, _unused2, action = plan_template_spec(
        policy(state="absent", panic_device="none"), spec
    )
    assert action == "removed" and "panicDevices" not in desired["domain"]["devices"]
    # Without panic_device the panic devices are neither shown nor touched.
    p = policy()
    assert "panicDevices" not in p.view(spec)
    desired, _unused1, _unused2, _unused3 = plan_template_spec(p, copy.deepcopy(spec))
    assert desired["domain"]["devices"]["panicDevices"] == spec["domain"]["devices"]["panicDevices"]


@pytest.mark.parametrize(
    "kw, spec, labels, message",
    [
        ({}, {"architecture": "arm64"}, None, "architecture arm64: KubeVirt offers no watchdog"),
        ({}, {"architecture": "ppc64le"}, None, "architecture ppc64le"),
        ({"model": "diag288"}, {}, None, "model diag288: KubeVirt only accepts i6300esb on amd64"),
        ({"model": "i6300esb"}, {"architecture": "s390x"}, None, "only accepts diag288 on s390x"),
        ({}, {}, {"os.template.kubevirt.io/win2k22": "true"}, "Windows"),
        (
            {"state": "absent", "panic_device": "isa"},
            {"architecture": "arm64"},
            None,
            "panic_device isa: not available",
        ),
        (
            {"state": "absent", "panic_device": "pvpanic"},
            {"architecture": "s390x"},
            None,
            "panic_device pvpanic",
        ),
    ],
)
def test_check_rejects(kw, spec, labels, message):
    with pytest.raises(VmRejected) as err:
        policy(**kw).check(vm(spec, labels))
    assert message in str(err.value)


def test_check_accepts():
    policy().check(vm({"architecture": "s390x"}))
    policy(force=True).check(vm({}, {"os.template.kubevirt.io/win10": "true"}))
    policy(state="absent", panic_device="hyperv").check(
        vm({}, {"os.template.kubevirt.io/win10": "true"})
    )
    policy(state="absent").check(vm({"architecture": "arm64"}))
    policy(state="absent", panic_device="pvpanic").check(vm({"architecture": "arm64"}))


def test_build_policy_warns_about_shutdown():
    warnings = []
    pol, extra = build_policy(
        {
            "platform": "kubevirt",
            "state": "present",
            "model": "auto",
            "action": "shutdown",
            "restart": "never",
        },
        warnings.append,
    )
    assert extra == {} and not pol.wants_agent()
    assert len(warnings) == 1 and "ACPI" in warnings[0]


def test_current_watchdog():
    assert current_watchdog({}) is None
    assert current_watchdog({"watchdog": {"name": "w", "diag288": {"action": "poweroff"}}}) == (
        "w",
        "diag288",
        "poweroff",
    )
    assert current_watchdog({"watchdog": {"name": "w"}}) == ("w", None, None)
