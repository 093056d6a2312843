"""Unit tests of the fleet engine (planning, writes, conflicts) on an in-memory API."""

import pytest

from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.fleet import (
    FleetReconciler,
    classify,
    merge_patch,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.selection import Selection
from ansible_collections.vmhealth.kvm.plugins.module_utils.probe import ProbePolicy, ProbeSpec

from .fake_api import FakeApi, apply_merge_patch

VMS = "/apis/kubevirt.io/v1/namespaces/ns/virtualmachines"
TEMPLATES = "/apis/template.openshift.io/v1/namespaces/ns/templates"


def make_vm(name, probe=None, running=True, run_strategy="Always", labels=None, **extra_spec):
    spec = {"domain": {"devices": {}}}
    spec.update(extra_spec)
    if probe is not None:
        spec["readinessProbe"] = probe
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": "ns", "labels": labels or {}},
        "spec": {"runStrategy": run_strategy, "template": {"spec": spec}},
        "status": {"created": running, "ready": running},
    }


def reconciler(api, check_mode=False, diff_mode=False, templates=False, exclude=None, **probe):
    probe = probe or {"guest_agent_ping": True}
    spec = ProbeSpec.from_params(dict(probe="readiness", state="present", **probe))
    selection = Selection.from_params({"namespace": "ns", "exclude": exclude or []})
    return FleetReconciler(
        api,
        selection,
        ProbePolicy(spec),
        check_mode=check_mode,
        diff_mode=diff_mode,
        templates=templates,
    )


@pytest.mark.parametrize(
    "before, after",
    [
        ({"a": 1, "b": {"c": 1, "d": 2}}, {"a": 1, "b": {"c": 2}}),
        ({"p": {"exec": {"command": ["x"]}}}, {"p": {"guestAgentPing": {}}}),
        ({}, {"p": {"guestAgentPing": {}, "periodSeconds": 5}}),
        ({"p": {"x": 1}, "q": 2}, {"q": 2}),
        ({"l": [1, 2]}, {"l": [2]}),
    ],
)
def test_merge_patch_round_trip(before, after):
    assert apply_merge_patch(before, merge_patch(before, after)) == after


def test_merge_patch_touches_only_what_differs():
    before = {"domain": {"cpu": {"cores": 2}}, "readinessProbe": {"exec": {"command": ["x"]}}}
    after = {"domain": {"cpu": {"cores": 2}}, "readinessProbe": {"guestAgentPing": {}}}
    assert merge_patch(before, after) == {"readinessProbe": {"exec": None, "guestAgentPing": {}}}


def test_classify():
    assert classify({}, {"p": 1}) == "created"
    assert classify({"p": 1}, {}) == "removed"
    assert classify({"p": 1}, {"p": 2}) == "updated"
    assert classify({"p": 1}, {"p": 1}) == "unchanged"


def test_converge_then_idempotent():
    api = FakeApi()
    api.add(VMS + "/a", make_vm("a"))
    api.add(VMS + "/b", make_vm("b", probe={"guestAgentPing": {}}))
    api.add(VMS + "/c", make_vm("c", probe={"exec": {"command": ["true"]}}, running=False))
    result = reconciler(api).run()
    actions = {vm["name"]: (vm["action"], vm["restart_required"]) for vm in result["vms"]}
    assert actions == {"a": ("created", True), "b": ("unchanged", False), "c": ("updated", False)}
    assert result["changed"] is True
    assert result["counts"]["created"] == 1 and result["counts"]["updated"] == 1
    patch = [c for c in api.calls if c[0] == "PATCH" and c[1].endswith("/a")][0][2]
    assert patch["spec"] == {"template": {"spec": {"readinessProbe": {"guestAgentPing": {}}}}}
    assert patch["metadata"]["resourceVersion"]

    api.calls.clear()
    again = reconciler(api).run()
    assert again["changed"] is False
    assert api.writes() == []
    assert [c[0] for c in api.calls] == ["LIST"]


def test_check_mode_makes_no_write_and_reports_the_plan():
    api = FakeApi()
    api.add(VMS + "/a", make_vm("a"))
    result = reconciler(api, check_mode=True, diff_mode=True).run()
    assert api.writes() == []
    assert result["changed"] is True
    assert result["vms"][0]["action"] == "created"
    assert result["vms"][0]["diff"] == {
        "before": {},
        "after": {"readinessProbe": {"guestAgentPing": {}}},
    }
    assert result["diff"][0]["before_header"] == "VirtualMachine ns/a"


def test_conflict_is_replanned_and_concurrent_change_survives():
    api = FakeApi()
    api.add(VMS + "/a", make_vm("a"))
    api.conflicts = 2
    result = reconciler(api).run()
    assert result["vms"][0]["action"] == "created"
    stored = api.objects[VMS + "/a"]
    assert stored["metadata"]["labels"]["touched"] == "yes"
    assert stored["spec"]["template"]["spec"]["readinessProbe"] == {"guestAgentPing": {}}
    assert len([c for c in api.calls if c[0] == "PATCH"]) == 3


def test_conflicts_are_bounded():
    api = FakeApi()
    api.add(VMS + "/a", make_vm("a"))
    api.conflicts = 100
    result = reconciler(api).run()
    assert result["vms"][0]["action"] == "failed"
    assert "still conflicting after 5 attempts" in result["vms"][0]["reason"]
    assert len([c for c in api.calls if c[0] == "PATCH"]) == 5


def test_rejected_vm_fails_alone():
    api = FakeApi()
    api.add(VMS + "/pod", make_vm("pod"))
    api.add(
        VMS + "/nopod", make_vm("nopod", networks=[{"name": "m", "multus": {"networkName": "x"}}])
    )
    rec = reconciler(api, tcp_socket={"port": 22})
    result = rec.run()
    actions = {vm["name"]: vm["action"] for vm in result["vms"]}
    assert actions == {"pod": "created", "nopod": "failed"}
    failed, stopped = rec.failures()
    assert [i.name for i in failed] == ["nopod"] and not stopped
    assert "pod network" in failed[0].reason


def test_excluded_vm_is_skipped_and_untouched():
    api = FakeApi()
    api.add(VMS + "/a", make_vm("a"))
    api.add(VMS + "/b", make_vm("b"))
    result = reconciler(api, exclude=["b"]).run()
    assert {vm["name"]: vm["action"] for vm in result["vms"]} == {"a": "created", "b": "skipped"}
    assert not any(c[1].endswith("/b") for c in api.writes())


def test_restart_required_condition_counts_even_when_unchanged():
    api = FakeApi()
    vm = make_vm("a", probe={"guestAgentPing": {}})
    vm["status"]["conditions"] = [{"type": "RestartRequired", "status": "True"}]
    api.add(VMS + "/a", vm)
    result = reconciler(api).run()
    assert result["vms"][0]["action"] == "unchanged"
    assert result["vms"][0]["restart_required"] is True


def test_agent_and_windows_warnings():
    api = FakeApi()
    api.add(VMS + "/lin", make_vm("lin"))
    api.add(VMS + "/win", make_vm("win", labels={"os.template.kubevirt.io/win2k22": "true"}))
    vmi = {
        "metadata": {"name": "win", "namespace": "ns"},
        "status": {"conditions": [{"type": "AgentConnected", "status": "True"}]},
    }
    api.add("/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/win", vmi)
    rec = reconciler(api)
    rec.run()
    assert len(rec.warnings) == 2
    assert "Windows" in rec.warnings[0] and "ns/win" in rec.warnings[0]
    assert (
        "not connected" in rec.warnings[1]
        and "ns/lin" in rec.warnings[1]
        and "ns/win" not in rec.warnings[1]
    )


def test_templates_get_the_probe_in_every_embedded_vm():
    api = FakeApi()
    template = {
        "apiVersion": "template.openshift.io/v1",
        "kind": "Template",
        "metadata": {"name": "win-tpl", "namespace": "ns"},
        "objects": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}},
            make_vm("${NAME}"),
        ],
        "parameters": [{"name": "NAME"}],
    }
    api.add(TEMPLATES + "/win-tpl", template)
    result = reconciler(api, templates=True).run()
    tpl = [vm for vm in result["vms"] if vm["kind"] == "Template"][0]
    assert tpl["action"] == "created"
    stored = api.objects[TEMPLATES + "/win-tpl"]
    assert stored["objects"][0] == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc"},
    }
    assert stored["objects"][1]["spec"]["template"]["spec"]["readinessProbe"] == {
        "guestAgentPing": {}
    }
    api.calls.clear()
    again = reconciler(api, templates=True).run()
    assert again["changed"] is False and api.writes() == []
