"""Schema validation in the Kubernetes API test double, with the real CRDs and with the fallback schemas."""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kube_test_server import KubeTestServer
from kube_test_server.schema import DEFAULT_CRD_DIR, SchemaSet, resolve_crd_dir
from kube_test_server.testing import alerting_rule, prometheus_rule, raw_request, vm_manifest

HAVE_CRDS = (DEFAULT_CRD_DIR / "virtualmachines.kubevirt.io.yaml").is_file()
VM_PATH = "/apis/kubevirt.io/v1/namespaces/default/virtualmachines"
PROMRULE_PATH = "/apis/monitoring.coreos.com/v1/namespaces/default/prometheusrules"
ALERTRULE_PATH = "/apis/monitoring.openshift.io/v1/namespaces/openshift-monitoring/alertingrules"
TEMPLATE_PATH = "/apis/template.openshift.io/v1/namespaces/default/templates"


@pytest.fixture(scope="module", params=["crd", "fallback"])
def server(request, tmp_path_factory):
    if request.param == "crd":
        if not HAVE_CRDS:
            pytest.skip("the shared CRD directory is absent")
        srv = KubeTestServer(crd_dir=DEFAULT_CRD_DIR)
    else:
        # an empty directory: every CRD file is missing, so the fallback schemas are used
        srv = KubeTestServer(crd_dir=tmp_path_factory.mktemp("no-crds"))
    with srv:
        srv.mode = request.param
        yield srv


@pytest.fixture(autouse=True)
def _clean(server):
    server.reset()
    server.seed(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openshift-monitoring"}}
    )


def post(server, path, manifest):
    return raw_request(server, "POST", path, body=manifest)


def test_schema_sources(server):
    expected = "crd" if server.mode == "crd" else "fallback"
    assert set(server.schema_sources.values()) == {expected}


def test_valid_objects_are_accepted(server):
    vm = vm_manifest("vm1")
    spec = vm["spec"]["template"]["spec"]
    spec["networks"] = [{"name": "default", "pod": {}}]
    spec["domain"]["devices"]["interfaces"] = [{"name": "default", "masquerade": {}}]
    spec["readinessProbe"] = {"httpGet": {"port": 80, "path": "/healthz"}, "timeoutSeconds": 2}
    assert post(server, VM_PATH, vm)[0] == 201
    vm = vm_manifest("vm2")
    spec = vm["spec"]["template"]["spec"]
    spec["readinessProbe"] = {"guestAgentPing": {}, "initialDelaySeconds": 30, "periodSeconds": 10}
    spec["livenessProbe"] = {"exec": {"command": ["cat", "/tmp/ok"]}, "failureThreshold": 3}
    spec["domain"]["devices"]["watchdog"] = {"name": "wd", "i6300esb": {"action": "reset"}}
    spec["domain"]["devices"]["panicDevices"] = [{"model": "pvpanic"}]
    spec["architecture"] = "amd64"
    assert post(server, VM_PATH, vm)[0] == 201
    assert post(server, PROMRULE_PATH, prometheus_rule("r1"))[0] == 201
    assert post(server, ALERTRULE_PATH, alerting_rule("a1"))[0] == 201


def test_unknown_field_in_probe_is_rejected_with_its_path(server):
    vm = vm_manifest("vm1")
    vm["spec"]["template"]["spec"]["readinessProbe"] = {"guestAgentPing": {}, "foo": 1}
    status, _unused, body = post(server, VM_PATH, vm)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"] == (
        'VirtualMachine.kubevirt.io "vm1" is invalid: spec.template.spec.readinessProbe.foo: '
        "field not declared in schema"
    )
    assert body["details"] == {
        "name": "vm1",
        "group": "kubevirt.io",
        "kind": "VirtualMachine",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": "field not declared in schema",
                "field": "spec.template.spec.readinessProbe.foo",
            }
        ],
    }


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (
            lambda s: s["domain"]["devices"].update(watchdog={"i6300esb": {"action": "reset"}}),
            "spec.template.spec.domain.devices.watchdog.name: Required value",
        ),
        (
            lambda s: s.update(readinessProbe={"guestAgentPing": {"unexpected": True}}),
            "spec.template.spec.readinessProbe.guestAgentPing.unexpected: field not declared in schema",
        ),
        (
            lambda s: s.update(livenessProbe={"tcpSocket": {"port": 22}, "periodSeconds": "10"}),
            'spec.template.spec.livenessProbe.periodSeconds: Invalid value: "string": '
            'spec.template.spec.livenessProbe.periodSeconds in body must be of type integer: "string"',
        ),
        (
            lambda s: s.update(readinessProbe={"tcpSocket": {"port": 22}, "timeoutSeconds": 2**40}),
            "spec.template.spec.readinessProbe.timeoutSeconds in body must be of type int32",
        ),
        (lambda s: s.pop("domain"), "spec.template.spec.domain: Required value"),
    ],
)
def test_vm_schema_errors(server, mutate, fragment):
    vm = vm_manifest("vm1")
    mutate(vm["spec"]["template"]["spec"])
    status, _unused, body = post(server, VM_PATH, vm)
    assert status == 422 and fragment in body["message"]


def test_prometheus_rule_pattern_and_list_map_keys(server):
    rule = prometheus_rule("r1", for_="5x")
    status, _unused, body = post(server, PROMRULE_PATH, rule)
    assert status == 422
    assert (
        'spec.groups[0].rules[0].for: Invalid value: "5x": spec.groups[0].rules[0].for in body should match'
        in (body["message"])
    )
    assert body["details"]["causes"][0]["field"] == "spec.groups[0].rules[0].for"
    duplicate = prometheus_rule("r1")
    duplicate["spec"]["groups"].append(copy.deepcopy(duplicate["spec"]["groups"][0]))
    status, _unused, body = post(server, PROMRULE_PATH, duplicate)
    assert status == 422 and "spec.groups[1]: Duplicate value" in body["message"]
    missing_expr = prometheus_rule("r1")
    del missing_expr["spec"]["groups"][0]["rules"][0]["expr"]
    status, _unused, body = post(server, PROMRULE_PATH, missing_expr)
    assert status == 422 and "spec.groups[0].rules[0].expr: Required value" in body["message"]
    strategy = prometheus_rule("r1")
    strategy["spec"]["groups"][0]["partial_response_strategy"] = "WARN"  # (?i) in the Go regex
    assert post(server, PROMRULE_PATH, strategy)[0] == 201


def test_alerting_rule_constraints(server):
    empty = alerting_rule("a1")
    empty["spec"]["groups"][0]["rules"] = []
    status, _unused, body = post(server, ALERTRULE_PATH, empty)
    assert (
        status == 422
        and "spec.groups[0].rules in body should have at least 1 items" in body["message"]
    )
    no_alert = alerting_rule("a1")
    del no_alert["spec"]["groups"][0]["rules"][0]["alert"]
    status, _unused, body = post(server, ALERTRULE_PATH, no_alert)
    assert status == 422 and "spec.groups[0].rules[0].alert: Required value" in body["message"]


def test_validation_applies_to_the_patched_result(server):
    assert post(server, VM_PATH, vm_manifest("vm1"))[0] == 201
    status, _unused, body = raw_request(
        server,
        "PATCH",
        f"{VM_PATH}/vm1",
        body=[
            {
                "op": "add",
                "path": "/spec/template/spec/readinessProbe",
                "value": {"httpGet": {"port": 80}, "x": 1},
            }
        ],
        content_type="application/json-patch+json",
    )
    assert (
        status == 422
        and "spec.template.spec.readinessProbe.x: field not declared in schema" in body["message"]
    )


def test_null_values_are_pruned_like_the_real_server(server):
    vm = vm_manifest("vm1")
    vm["spec"]["template"]["spec"]["readinessProbe"] = None
    vm["metadata"]["annotations"] = None
    status, _unused, body = post(server, VM_PATH, vm)
    assert status == 201
    assert (
        "readinessProbe" not in body["spec"]["template"]["spec"]
        and "annotations" not in body["metadata"]
    )


# --------------------------------------------------------------------------- webhooks


@pytest.mark.parametrize(
    ("mutate", "message", "field"),
    [
        (
            lambda vm: vm["spec"].update(running=True),
            "Running and RunStrategy are mutually exclusive",
            "spec.running",
        ),
        (lambda vm: vm["spec"].pop("runStrategy"), "RunStrategy must be specified", "spec.running"),
        (
            lambda vm: vm["spec"].update(runStrategy="Sometimes"),
            "Invalid RunStrategy (Sometimes)",
            "spec.runStrategy",
        ),
        (
            lambda vm: vm["spec"]["template"]["spec"].update(
                readinessProbe={"guestAgentPing": {}, "exec": {"command": ["true"]}}
            ),
            "spec.template.spec.readinessProbe must have exactly one probe type set",
            "spec.template.spec.readinessProbe",
        ),
        (
            lambda vm: vm["spec"]["template"]["spec"].update(livenessProbe={"periodSeconds": 5}),
            "either spec.template.spec.livenessProbe.tcpSocket, spec.template.spec.livenessProbe.exec or "
            "spec.template.spec.livenessProbe.httpGet must be set if a spec.template.spec.livenessProbe is specified",
            "spec.template.spec.livenessProbe",
        ),
        (
            lambda vm: vm["spec"]["template"]["spec"].update(
                networks=[{"name": "m", "multus": {"networkName": "br"}}],
                domain={"devices": {"interfaces": [{"name": "m", "bridge": {}}]}},
                readinessProbe={"httpGet": {"port": 80}},
            ),
            "spec.template.spec.readinessProbe.httpGet is only allowed if the Pod Network is attached",
            "spec.template.spec.readinessProbe.httpGet",
        ),
        (
            # a network needs an interface of the same name (defaults only when both are empty)
            lambda vm: vm["spec"]["template"]["spec"].update(
                networks=[{"name": "default", "pod": {}}]
            ),
            "spec.template.spec.networks[0].name 'default' not found.",
            "spec.template.spec.networks[0].name",
        ),
        (
            lambda vm: vm["spec"]["template"]["spec"]["domain"]["devices"].update(
                interfaces=[{"name": "nic0", "masquerade": {}}]
            ),
            "spec.template.spec.domain.devices.interfaces[0].name 'nic0' not found.",
            "spec.template.spec.domain.devices.interfaces[0].name",
        ),
        (
            lambda vm: vm["spec"]["template"]["spec"].update(
                startStrategy="Paused", livenessProbe={"guestAgentPing": {}}
            ),
            "Pausing VMI with LivenessProbe is not supported",
            "spec.template.spec.startStrategy",
        ),
    ],
)
def test_kubevirt_webhook_rejections(server, mutate, message, field):
    vm = vm_manifest("vm1")
    mutate(vm)
    status, _unused, body = post(server, VM_PATH, vm)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith(
        'admission webhook "virtualmachine-validator.kubevirt.io" denied the request: '
    )
    assert message in body["message"]
    assert body["details"]["causes"][0]["field"] == field


# --------------------------------------------------------------------------- templates


def _template(vm: dict, parameters: list | None = None) -> dict:
    return {
        "apiVersion": "template.openshift.io/v1",
        "kind": "Template",
        "metadata": {"name": "vm-template"},
        "objects": [vm],
        "parameters": parameters or [],
    }


def test_template_embedded_vms_are_validated(server):
    vm = vm_manifest("${NAME}")
    vm["spec"]["template"]["spec"]["domain"]["cpu"] = {"cores": "${{CPU_CORES}}"}
    params = [{"name": "NAME", "value": "vm-a"}, {"name": "CPU_CORES", "value": "2"}]
    assert post(server, TEMPLATE_PATH, _template(vm, params))[0] == 201
    bad = copy.deepcopy(vm)
    bad["spec"]["template"]["spec"]["readinessProbe"] = {"guestAgentPing": {}, "foo": 1}
    bad_template = _template(bad, params)
    bad_template["metadata"]["name"] = "bad"
    status, _unused, body = post(server, TEMPLATE_PATH, bad_template)
    assert status == 422
    assert body["message"] == (
        'Template.template.openshift.io "bad" is invalid: '
        "objects[0].spec.template.spec.readinessProbe.foo: field not declared in schema"
    )
    unknown_top = _template(vm, params)
    unknown_top["metadata"]["name"] = "other"
    unknown_top["bogus"] = 1
    assert post(server, TEMPLATE_PATH, unknown_top)[0] == 422


def test_template_object_validation_can_be_turned_off():
    with KubeTestServer(validate_template_objects=False) as srv:
        vm = vm_manifest("vm-a")
        vm["spec"]["template"]["spec"]["readinessProbe"] = {"foo": 1}
        assert post(srv, TEMPLATE_PATH, _template(vm))[0] == 201


# --------------------------------------------------------------------------- schema plumbing


def test_crd_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("VMHEALTH_CRD_DIR", raising=False)
    assert resolve_crd_dir(None) == DEFAULT_CRD_DIR
    assert DEFAULT_CRD_DIR.parts[-2:] == ("shared", "crds")
    monkeypatch.setenv("VMHEALTH_CRD_DIR", str(tmp_path))
    assert resolve_crd_dir(None) == tmp_path
    assert set(SchemaSet().sources.values()) == {"fallback"}
    assert resolve_crd_dir(tmp_path / "x") == tmp_path / "x"


def test_controller_status_conforms_to_the_status_schema(server):
    """The VM/VMI status this server writes must itself pass the (real or fallback) schema."""
    assert post(server, VM_PATH, vm_manifest("vm1"))[0] == 201
    server.set_vmi_status("default", "vm1", ready=False, agent_connected=False)
    vm = server.get_object("kubevirt.io/v1", "VirtualMachine", "vm1", "default")
    vmi = server.get_object("kubevirt.io/v1", "VirtualMachineInstance", "vm1", "default")
    assert server.schemas.get("virtualmachines.kubevirt.io").validate(vm) == []
    assert server.schemas.get("virtualmachineinstances.kubevirt.io").validate(vmi) == []


def test_validation_speed(server, capsys):
    """Strict validation must stay fast enough for thousands of writes (reported, loosely bounded)."""
    validator = server.schemas.get("virtualmachines.kubevirt.io")
    vm = vm_manifest("vm1")
    vm["spec"]["template"]["spec"]["readinessProbe"] = {"guestAgentPing": {}, "periodSeconds": 10}
    vm["spec"]["template"]["spec"]["domain"]["devices"]["watchdog"] = {
        "name": "w",
        "i6300esb": {"action": "reset"},
    }
    rounds = 200
    started = time.perf_counter()
    for _unused in range(rounds):
        assert validator.validate(vm) == []
    per_vm_ms = (time.perf_counter() - started) / rounds * 1000
    with capsys.disabled():
        print(
            f"\n[kube-test-server] {server.mode} schema: {per_vm_ms:.2f} ms per VirtualMachine validation"
        )
    assert per_vm_ms < 25
