"""KubeVirt behaviour of the Kubernetes API test double: VMIs, VM status, start/stop/restart."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic import exceptions as dyn_exc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kube_test_server import KubeTestServer
from kube_test_server.testing import api_client, raw_request, vm_manifest

SUB = "/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachines"


@pytest.fixture(scope="module")
def server():
    with KubeTestServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server):
    server.reset()
    server.set_vmi_ready_default(True)


@pytest.fixture(scope="module")
def dyn(server):
    return DynamicClient(api_client(server))


@pytest.fixture
def vms(dyn):
    return dyn.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachine")


@pytest.fixture
def vmis(dyn):
    return dyn.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachineInstance")


def action(server, name, verb, body=None):
    return raw_request(server, "PUT", f"{SUB}/{name}/{verb}", body=body if body is not None else {})


def conditions(obj) -> dict[str, dict]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}


def vm_of(server, name):
    return server.get_object("kubevirt.io/v1", "VirtualMachine", name, "default")


def vmi_of(server, name):
    return server.get_object("kubevirt.io/v1", "VirtualMachineInstance", name, "default")


def test_running_vm_gets_a_vmi_and_status(server, vms, vmis):
    manifest = vm_manifest("vm1", template_labels={"app": "web"})
    manifest["spec"]["template"]["spec"]["readinessProbe"] = {"guestAgentPing": {}}
    created = vms.create(body=manifest, namespace="default").to_dict()
    vmi = vmis.get(name="vm1", namespace="default").to_dict()
    assert vmi["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "name": "vm1",
            "uid": created["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert vmi["metadata"]["labels"]["app"] == "web"
    assert vmi["spec"] == manifest["spec"]["template"]["spec"]
    assert vmi["status"]["phase"] == "Running"
    assert (
        conditions(vmi)["Ready"]["status"] == "True"
        and conditions(vmi)["AgentConnected"]["status"] == "True"
    )
    status = vms.get(name="vm1", namespace="default").to_dict()["status"]
    assert (
        status["printableStatus"] == "Running"
        and status["ready"] is True
        and status["created"] is True
    )
    assert conditions({"status": status})["Ready"]["status"] == "True"


@pytest.mark.parametrize("spec", [{"runStrategy": "Halted"}, {"running": False}])
def test_halted_vm_has_no_vmi(server, vms, spec):
    manifest = vm_manifest("vm1", run_strategy=None)
    manifest["spec"].update(spec)
    status = vms.create(body=manifest, namespace="default").to_dict()["status"]
    assert vmi_of(server, "vm1") is None
    assert status["printableStatus"] == "Stopped" and "ready" not in status
    ready = conditions({"status": status})["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "VMINotExists"


def test_run_strategy_changes_start_and_stop_the_vmi(server, vms):
    vms.create(body=vm_manifest("vm1"), namespace="default")
    halted = vms.patch(
        name="vm1",
        namespace="default",
        body={"spec": {"runStrategy": "Halted"}},
        content_type="application/merge-patch+json",
    )
    assert vmi_of(server, "vm1") is None and halted.status.printableStatus == "Stopped"
    assert halted.metadata.generation == 2
    vms.patch(
        name="vm1",
        namespace="default",
        body={"spec": {"runStrategy": "Always"}},
        content_type="application/merge-patch+json",
    )
    assert vmi_of(server, "vm1") is not None


def test_restart_error_cases(server, vms):
    status, _unused, body = action(server, "ghost", "restart")
    assert status == 404 and body["message"] == 'virtualmachine.kubevirt.io "ghost" not found'
    vms.create(body=vm_manifest("halted", run_strategy="Halted"), namespace="default")
    status, _unused, body = action(server, "halted", "restart")
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on virtualmachine.kubevirt.io "halted": '
        "RunStategy Halted does not support manual restart requests"
    )
    vms.create(body=vm_manifest("once", run_strategy="Once"), namespace="default")
    status, _unused, body = action(server, "once", "restart")
    assert status == 409 and "Once does not support manual restart requests" in body["message"]
    vms.create(body=vm_manifest("manual", run_strategy="Manual"), namespace="default")
    status, _unused, body = action(server, "manual", "restart")
    assert status == 409 and body["message"].endswith(": VM is not running: Halted")
    vms.create(body=vm_manifest("vm1"), namespace="default")
    status, _unused, body = action(server, "vm1", "restart", {"gracePeriodSeconds": 5})
    assert (
        status == 400
        and body["message"] == "For force restart, only gracePeriod=0 is supported for now"
    )
    assert raw_request(server, "POST", f"{SUB}/vm1/restart", body={})[0] == 405


def test_restart_recreates_the_vmi_from_the_current_template(server, vms):
    vms.create(body=vm_manifest("vm1"), namespace="default")
    old = vmi_of(server, "vm1")
    probe = {"guestAgentPing": {}, "periodSeconds": 5}
    patched = vms.patch(
        name="vm1",
        namespace="default",
        body={"spec": {"template": {"spec": {"readinessProbe": probe}}}},
        content_type="application/merge-patch+json",
    ).to_dict()
    restart_required = conditions(patched)["RestartRequired"]
    assert restart_required["status"] == "True"
    assert (
        restart_required["message"] == "a non-live-updatable field was changed in the template spec"
    )
    assert (
        patched["status"]["desiredGeneration"] == 2 and patched["status"]["observedGeneration"] == 1
    )
    assert (
        "readinessProbe" not in vmi_of(server, "vm1")["spec"]
    )  # the running VMI keeps the old spec
    time.sleep(1.05)  # creationTimestamp has second precision
    status, headers, body = action(server, "vm1", "restart", {"gracePeriodSeconds": 0})
    assert status == 202 and body is None and headers["Content-Length"] == "0"
    new = vmi_of(server, "vm1")
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert new["metadata"]["creationTimestamp"] > old["metadata"]["creationTimestamp"]
    assert new["spec"]["readinessProbe"] == probe
    assert new["metadata"]["annotations"]["kubevirt.io/vm-generation"] == "2"
    vm = vm_of(server, "vm1")
    assert "RestartRequired" not in conditions(vm) and vm["status"]["observedGeneration"] == 2


def test_metadata_changes_do_not_require_restart(server, vms):
    vms.create(body=vm_manifest("vm1"), namespace="default")
    patched = vms.patch(
        name="vm1",
        namespace="default",
        body={"metadata": {"labels": {"x": "1"}, "annotations": {"note": "hi"}}},
        content_type="application/merge-patch+json",
    ).to_dict()
    assert "RestartRequired" not in conditions(patched) and patched["metadata"]["generation"] == 1


def test_restart_required_sticks_until_restart(server, vms):
    vms.create(body=vm_manifest("vm1"), namespace="default")
    for value in (2, None):  # change, then revert: KubeVirt keeps the condition
        vms.patch(
            name="vm1",
            namespace="default",
            body={"spec": {"template": {"spec": {"terminationGracePeriodSeconds": value}}}},
            content_type="application/merge-patch+json",
        )
        assert "RestartRequired" in conditions(vm_of(server, "vm1"))


def test_stop_and_start(server, vms):
    vms.create(body=vm_manifest("vm1"), namespace="default")
    status, _unused, _unused = action(server, "vm1", "start")
    assert status == 409
    assert action(server, "vm1", "stop")[0] == 202
    vm = vm_of(server, "vm1")
    assert vm["spec"]["runStrategy"] == "Halted" and vmi_of(server, "vm1") is None
    status, _unused, body = action(server, "vm1", "stop")
    assert status == 409 and body["message"].endswith(": VM is not running")
    assert action(server, "vm1", "start")[0] == 202
    assert (
        vm_of(server, "vm1")["spec"]["runStrategy"] == "Always"
        and vmi_of(server, "vm1") is not None
    )
    status, _unused, body = action(server, "vm1", "start")
    assert status == 409 and body["message"].endswith(": VM is already running")
    legacy = vm_manifest("legacy", run_strategy=None)
    legacy["spec"]["running"] = True
    vms.create(body=legacy, namespace="default")
    assert action(server, "legacy", "stop")[0] == 202
    assert vm_of(server, "legacy")["spec"] == {**legacy["spec"], "running": False}


def test_manual_run_strategy(server, vms):
    vms.create(body=vm_manifest("vm1", run_strategy="Manual"), namespace="default")
    assert vmi_of(server, "vm1") is None
    assert action(server, "vm1", "start")[0] == 202
    assert (
        vmi_of(server, "vm1") is not None
        and vm_of(server, "vm1")["spec"]["runStrategy"] == "Manual"
    )
    assert action(server, "vm1", "restart")[0] == 202
    assert action(server, "vm1", "stop")[0] == 202
    assert vmi_of(server, "vm1") is None and vm_of(server, "vm1")["spec"]["runStrategy"] == "Manual"


def test_stop_holds_a_rerun_on_failure_vm_down(server, vms):
    vms.create(body=vm_manifest("vm1", run_strategy="RerunOnFailure"), namespace="default")
    assert action(server, "vm1", "stop")[0] == 202
    vms.patch(
        name="vm1",
        namespace="default",
        body={"metadata": {"labels": {"x": "y"}}},
        content_type="application/merge-patch+json",
    )
    assert (
        vmi_of(server, "vm1") is None
        and vm_of(server, "vm1")["spec"]["runStrategy"] == "RerunOnFailure"
    )
    assert action(server, "vm1", "start")[0] == 202 and vmi_of(server, "vm1") is not None


def test_dry_run_actions_change_nothing(server, vms):
    vms.create(body=vm_manifest("vm1"), namespace="default")
    uid = vmi_of(server, "vm1")["metadata"]["uid"]
    rv = server.core.store.resource_version
    assert action(server, "vm1", "restart", {"dryRun": ["All"]})[0] == 202
    assert action(server, "vm1", "stop", {"dryRun": ["All"]})[0] == 202
    assert (
        vmi_of(server, "vm1")["metadata"]["uid"] == uid and server.core.store.resource_version == rv
    )
    assert [r["dry_run"] for r in server.requests() if r["subresource"] == "restart"] == [True]


def test_vmi_status_controls(server, vms):
    vms.create(body=vm_manifest("vm1"), namespace="default")
    rv = vm_of(server, "vm1")["metadata"]["resourceVersion"]
    server.set_vmi_status("default", "vm1", ready=False, agent_connected=False)
    vmi = vmi_of(server, "vm1")
    assert conditions(vmi)["Ready"]["status"] == "False" and "AgentConnected" not in conditions(vmi)
    vm = vm_of(server, "vm1")
    assert "ready" not in vm["status"] and conditions(vm)["Ready"]["status"] == "False"
    assert int(vm["metadata"]["resourceVersion"]) > int(rv) and vm["metadata"]["generation"] == 1
    status, _unused, body = raw_request(
        server,
        "POST",
        "/_test/vmi-status",
        body={"namespace": "default", "name": "vm1", "ready": True, "agent_connected": True},
        token=False,
    )
    assert status == 200 and conditions(body)["AgentConnected"]["status"] == "True"
    assert vm_of(server, "vm1")["status"]["ready"] is True
    assert (
        raw_request(
            server, "POST", "/_test/vmi-status", body={"namespace": "default", "name": "x"}
        )[0]
        == 404
    )


def test_readiness_after_restart_never_and_delayed(server, vms):
    vms.create(body=vm_manifest("never"), namespace="default")
    vms.create(body=vm_manifest("later"), namespace="default")
    server.set_vm_behaviour("default", "never", ready_after_restart=False)
    status, _unused, _unused = raw_request(
        server,
        "POST",
        "/_test/vm-behaviour",
        body={"namespace": "default", "name": "later", "ready_after_restart": 0.3},
    )
    assert status == 200
    assert action(server, "never", "restart")[0] == 202
    assert action(server, "later", "restart")[0] == 202
    assert conditions(vmi_of(server, "never"))["Ready"]["status"] == "False"
    assert vm_of(server, "later")["status"].get("ready") is None
    time.sleep(0.4)
    assert vm_of(server, "later")["status"]["ready"] is True
    assert conditions(vmi_of(server, "later"))["Ready"]["status"] == "True"
    assert conditions(vmi_of(server, "never"))["Ready"]["status"] == "False"


def test_default_vmi_readiness_can_be_changed(server, vms):
    server.set_vmi_ready_default(False)
    vms.create(body=vm_manifest("vm1"), namespace="default")
    assert vm_of(server, "vm1")["status"].get("ready") is None


def test_deleting_the_vmi_of_an_always_vm_recreates_it(server, vms, vmis):
    vms.create(body=vm_manifest("vm1"), namespace="default")
    uid = vmi_of(server, "vm1")["metadata"]["uid"]
    vmis.delete(name="vm1", namespace="default")
    assert vmi_of(server, "vm1")["metadata"]["uid"] != uid
    vms.delete(name="vm1", namespace="default")
    assert vmi_of(server, "vm1") is None


def test_vm_status_subresource_write(server, vms):
    vms.create(body=vm_manifest("vm1", run_strategy="Halted"), namespace="default")
    current = vms.get(name="vm1", namespace="default").to_dict()
    current["status"]["printableStatus"] = "Migrating"
    current["spec"]["runStrategy"] = "Always"  # ignored by a status write
    written = vms.status.replace(body=current, namespace="default").to_dict()
    assert written["status"]["printableStatus"] == "Migrating"
    assert written["spec"]["runStrategy"] == "Halted" and vmi_of(server, "vm1") is None
    current["status"]["printableStatus"] = 7
    del current["metadata"]["resourceVersion"]
    with pytest.raises(dyn_exc.UnprocessibleEntityError):
        vms.status.replace(body=current, namespace="default")


def test_orphan_delete_keeps_the_vmi(server, vms):
    vms.create(body=vm_manifest("vm1"), namespace="default")
    vms.delete(name="vm1", namespace="default", propagation_policy="Orphan")
    assert vmi_of(server, "vm1") is not None


def test_restart_through_dynamic_client_request(server, dyn, vms):
    vms.create(body=vm_manifest("vm1"), namespace="default")
    # KubeVirt answers 202 with an empty body; the dynamic client returns '' for it
    assert dyn.request("put", f"{SUB}/vm1/restart", body={}) == ""
    with pytest.raises(dyn_exc.ConflictError) as conflict:
        dyn.request("put", f"{SUB}/vm1/start", body={})
    assert json.loads(conflict.value.body)["message"].endswith("VM is already running")


def test_direct_vmi_create_is_validated_and_running(server, vmis):
    vmi = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": "bare"},
        "spec": {"domain": {"devices": {}, "resources": {"requests": {"memory": "64Mi"}}}},
    }
    created = vmis.create(body=vmi, namespace="default")
    assert created.status.phase == "Running"
    vmi["metadata"]["name"] = "bad"
    vmi["spec"]["readinessProbe"] = {"guestAgentPing": {}, "tcpSocket": {"port": 1}}
    with pytest.raises(dyn_exc.UnprocessibleEntityError) as invalid:
        vmis.create(body=vmi, namespace="default")
    assert (
        "virtualmachineinstances-create-validator.kubevirt.io"
        in json.loads(invalid.value.body)["message"]
    )
