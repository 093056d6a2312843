"""Unit tests of qemu_watchdog's platform-independent part: validation and the single-VM flow."""

import pytest

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ValidationError, VmRejected
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.common import (
    SHUTDOWN_WARNING,
    Current,
    WatchdogBackend,
    WatchdogSpec,
    classify,
    failure_message,
    reconcile,
)


def params(**kw):
    base = {"platform": "kubevirt", "state": "present", "model": "auto", "restart": "never"}
    base.update(kw)
    return base


def test_defaults_resolve_action_reset():
    spec = WatchdogSpec.from_params(params())
    assert (spec.platform, spec.state, spec.model, spec.action, spec.panic) == (
        "kubevirt",
        "present",
        "auto",
        "reset",
        None,
    )
    assert spec.warnings() == []


def test_shutdown_warns():
    assert WatchdogSpec.from_params(params(action="shutdown")).warnings() == [SHUTDOWN_WARNING]


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"platform": "vmware"}, "platform: must be one of"),
        ({"state": "gone"}, "state: must be present or absent"),
        ({"model": "sp805"}, "model: must be one of"),
        ({"model": "itco"}, "model: itco is not available on kubevirt"),
        ({"model": "ib700", "platform": "proxmox"}, "model: ib700 is refused on Proxmox VE"),
        ({"model": "diag288", "platform": "proxmox"}, "model: diag288 is not available on proxmox"),
        ({"action": "pause"}, "action: pause is not available on kubevirt"),
        ({"action": "debug", "platform": "libvirt"}, "action: debug is not available on libvirt"),
        ({"action": "dump", "platform": "proxmox"}, "action: dump is not available on proxmox"),
        ({"state": "absent", "action": "reset"}, "action: not used with state=absent"),
        ({"panic_device": "s390"}, "panic_device: must be one of"),
        (
            {"panic_device": "isa", "platform": "proxmox"},
            "panic_device: proxmox has no panic device",
        ),
        ({"restart": "rolling", "platform": "libvirt"}, "restart: rolling is not available"),
        ({"watchdog_name": "Bad_Name"}, "watchdog_name: 'Bad_Name' must be a DNS label"),
        (
            {"watchdog_name": "wd", "platform": "libvirt"},
            "watchdog_name: only used with platform=kubevirt",
        ),
        ({"shutdown_timeout": 10}, "shutdown_timeout: only used with platform libvirt or proxmox"),
        (
            {"shutdown_timeout": 0, "platform": "libvirt"},
            "shutdown_timeout: must be between 1 and 3600",
        ),
        ({"uri": "qemu:///system"}, "uri: only used with platform=libvirt"),
        ({"vmid": 100, "platform": "libvirt"}, "vmid: only used with platform=proxmox"),
        ({"namespace": "ns", "platform": "proxmox"}, "namespace: only used with platform=kubevirt"),
        (
            {"label_selectors": ["a=b"], "platform": "libvirt"},
            "label_selectors: only used with platform=kubevirt",
        ),
        ({"password": "x", "platform": "proxmox"}, "password: only used with platform=kubevirt"),
    ],
)
def test_validation_names_the_field(kw, message):
    with pytest.raises(ValidationError) as err:
        WatchdogSpec.from_params(params(**kw))
    assert message in str(err.value)


def test_defaults_of_other_platforms_are_not_errors():
    spec = WatchdogSpec.from_params(
        params(
            platform="libvirt",
            label_selectors=[],
            exclude=[],
            all_namespaces=False,
            templates=False,
        )
    )
    assert spec.platform == "libvirt"


def test_classify():
    assert classify({}, {}) == "unchanged"
    assert classify({}, {"a": 1}) == "created"
    assert classify({"a": 1}, {}) == "removed"
    assert classify({"a": 1}, {"a": 2}) == "updated"


class FakeBackend(WatchdogBackend):
    kind = "Fake"

    def __init__(
        self, view, running=False, live=None, windows=False, reject=None, restart_reason=""
    ):
        self.stored = view
        self.running = running
        self.live = live
        self.windows = windows
        self.reject = reject
        self.writes = []
        self.restarts = 0
        self.restart_reason = restart_reason

    def read(self):
        return Current("vm1", self.stored, self.running, self.live, raw=None, windows=self.windows)

    def desired(self, current):
        if self.reject:
            raise VmRejected(self.reject)
        return {"watchdog": {"model": "i6300esb", "action": "reset"}}, "raw"

    def apply(self, current, desired_raw):
        self.writes.append(desired_raw)
        self.stored = {"watchdog": {"model": "i6300esb", "action": "reset"}}
        return self.read()

    def restart(self, current):
        self.restarts += 1
        if not self.restart_reason:
            self.live = self.stored
        return self.restart_reason


SPEC = WatchdogSpec("libvirt", "present", action="reset")


def test_reconcile_create_then_unchanged():
    backend = FakeBackend({})
    first = reconcile(backend, SPEC, diff_mode=True)
    assert first["changed"] and first["vms"][0]["action"] == "created"
    assert first["vms"][0]["diff"] == {
        "before": {},
        "after": {"watchdog": {"model": "i6300esb", "action": "reset"}},
    }
    assert first["diff"][0]["before_header"] == "Fake vm1"
    second = reconcile(backend, SPEC)
    assert not second["changed"] and second["vms"][0]["action"] == "unchanged"
    assert backend.writes == ["raw"]


def test_check_mode_writes_nothing_and_reports_restart():
    backend = FakeBackend({}, running=True, live={})
    result = reconcile(backend, SPEC, restart="if_needed", check_mode=True)
    assert result["changed"] and backend.writes == [] and backend.restarts == 0
    assert result["vms"][0]["restart_required"]
    assert result["vms"][0]["reason"] == "check mode: would be restarted"


def test_running_vm_restart_never_and_if_needed():
    backend = FakeBackend({}, running=True, live={})
    never = reconcile(backend, SPEC)
    assert never["vms"][0]["restart_required"] and not never["vms"][0]["restarted"]
    again = reconcile(backend, SPEC, restart="if_needed")
    assert (
        again["changed"]
        and again["vms"][0]["restarted"]
        and not again["vms"][0]["restart_required"]
    )
    assert again["vms"][0]["action"] == "unchanged" and backend.restarts == 1
    assert not reconcile(backend, SPEC, restart="if_needed")["changed"]


def test_failed_restart_is_reported():
    backend = FakeBackend({}, running=True, live={}, restart_reason="restart failed: boom")
    result = reconcile(backend, SPEC, restart="if_needed")
    assert result["vms"][0]["reason"] == "restart failed: boom"
    assert result["vms"][0]["restart_required"] and not result["vms"][0]["restarted"]


def test_windows_and_rejections_fail_without_writing():
    windows = FakeBackend({}, windows=True)
    result = reconcile(windows, SPEC)
    assert result["vms"][0]["action"] == "failed" and "Windows" in result["vms"][0]["reason"]
    assert windows.writes == []
    assert "Fake vm1: " in failure_message(result)
    forced = reconcile(windows, WatchdogSpec("libvirt", "present", action="reset", force=True))
    assert forced["vms"][0]["action"] == "created"
    rejected = FakeBackend({}, reject="no way")
    assert reconcile(rejected, SPEC)["vms"][0]["reason"] == "no way"
    assert failure_message(reconcile(FakeBackend({}), SPEC)) == ""
