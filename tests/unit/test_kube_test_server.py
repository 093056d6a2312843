"""Tests of the Kubernetes API test double: discovery, CRUD, patches, selectors, pagination, dry run.

The server is exercised with the real ``kubernetes`` client (CoreV1Api and DynamicClient) and with
plain HTTP where the exact response shape matters.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import kubernetes
import pytest
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic import exceptions as dyn_exc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kube_test_server import KubeTestServer
from kube_test_server.testing import (
    alerting_rule,
    api_client,
    prometheus_rule,
    raw_request,
    vm_manifest,
)

VM_PATH = "/apis/kubevirt.io/v1/namespaces/default/virtualmachines"


@pytest.fixture(scope="module")
def server():
    with KubeTestServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server):
    server.reset()


@pytest.fixture(scope="module")
def api(server):
    return api_client(server)


@pytest.fixture(scope="module")
def core(api):
    return kubernetes.client.CoreV1Api(api)


@pytest.fixture(scope="module")
def dyn(api):
    return DynamicClient(api)


@pytest.fixture
def vms(dyn):
    return dyn.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachine")


def status_of(exc: Exception) -> dict:
    return json.loads(exc.body)


# --------------------------------------------------------------------------- discovery


def test_discovery_documents(server):
    status, _unused, version = raw_request(server, "GET", "/version")
    assert status == 200 and version["major"] == "1" and version["gitVersion"].startswith("v1.")
    _unused, _unused, api = raw_request(server, "GET", "/api")
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    _unused, _unused, core = raw_request(server, "GET", "/api/v1")
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["namespaces"]["namespaced"] is False and by_name["namespaces"]["shortNames"] == [
        "ns"
    ]
    assert by_name["pods"]["kind"] == "Pod" and by_name["pods"]["shortNames"] == ["po"]
    _unused, _unused, groups = raw_request(server, "GET", "/apis")
    assert groups["kind"] == "APIGroupList"
    names = {g["name"] for g in groups["groups"]}
    assert names == {
        "kubevirt.io",
        "subresources.kubevirt.io",
        "template.openshift.io",
        "monitoring.coreos.com",
        "monitoring.openshift.io",
    }
    _unused, _unused, kv = raw_request(server, "GET", "/apis/kubevirt.io/v1")
    kv_by_name = {r["name"]: r for r in kv["resources"]}
    vm = kv_by_name["virtualmachines"]
    assert vm["singularName"] == "virtualmachine" and vm["shortNames"] == ["vm", "vms"]
    assert vm["namespaced"] is True and vm["kind"] == "VirtualMachine" and "patch" in vm["verbs"]
    assert kv_by_name["virtualmachineinstances"]["shortNames"] == ["vmi", "vmis"]
    assert kv_by_name["virtualmachines/status"]["verbs"] == ["get", "patch", "update"]
    _unused, _unused, sub = raw_request(server, "GET", "/apis/subresources.kubevirt.io/v1")
    assert {r["name"] for r in sub["resources"]} == {
        "virtualmachines/start",
        "virtualmachines/stop",
        "virtualmachines/restart",
    }
    assert all(r["namespaced"] for r in sub["resources"])
    _unused, _unused, group = raw_request(server, "GET", "/apis/monitoring.coreos.com")
    assert group["kind"] == "APIGroup" and group["preferredVersion"]["version"] == "v1"
    for path, kind in (
        ("/apis/template.openshift.io/v1", "Template"),
        ("/apis/monitoring.coreos.com/v1", "PrometheusRule"),
        ("/apis/monitoring.openshift.io/v1", "AlertingRule"),
    ):
        _unused, _unused, doc = raw_request(server, "GET", path)
        assert doc["resources"][0]["kind"] == kind
    assert raw_request(server, "GET", "/openapi/v2")[0] == 404
    assert raw_request(server, "GET", "/apis/nope.example/v1")[0] == 404


def test_aggregated_discovery_accept_falls_back_to_group_list(server):
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    status, headers, doc = raw_request(server, "GET", "/apis", headers={"Accept": accept})
    assert status == 200 and doc["kind"] == "APIGroupList"
    assert headers["Content-Type"] == "application/json"


def test_dynamic_client_discovery(server, dyn):
    mark = server.mark()
    vm = dyn.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachine")
    assert vm.namespaced and vm.short_names == ["vm", "vms"] and "status" in vm.subresources
    assert dyn.resources.get(api_version="v1", kind="Pod").name == "pods"
    vmi = dyn.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachineInstance")
    assert vmi.short_names == ["vmi", "vmis"]
    assert dyn.resources.get(api_version="template.openshift.io/v1", kind="Template").namespaced
    assert (
        dyn.resources.get(api_version="monitoring.openshift.io/v1", kind="AlertingRule").name
        == "alertingrules"
    )
    # discovery requests are logged and flagged; the client never asks for /openapi/v2
    assert all(r["discovery"] for r in server.requests(mark))
    assert not any(r["path"].startswith("/openapi") for r in server.requests())


def test_kubernetes_core_get_api_client(server):
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

    server.seed(vm_manifest("vm1"))
    client = get_api_client(kubeconfig=str(server.kubeconfig_path))
    resource = client.resource("VirtualMachine", "kubevirt.io/v1")
    listed = client.get(resource, namespace="default").to_dict()
    assert listed["kind"] == "VirtualMachineList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["vm1"]


# --------------------------------------------------------------------------- CRUD


def test_core_namespace_and_pod_crud(server, core):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p1"},
        "spec": {"containers": [{"name": "c", "image": "localhost/img"}]},
    }
    with pytest.raises(kubernetes.client.ApiException) as missing_ns:
        core.create_namespaced_pod("team-a", pod)
    assert missing_ns.value.status == 404
    assert status_of(missing_ns.value)["message"] == 'namespaces "team-a" not found'
    created_ns = core.create_namespace({"metadata": {"name": "team-a"}})
    assert created_ns.status.phase == "Active"
    assert created_ns.metadata.labels["kubernetes.io/metadata.name"] == "team-a"
    created = core.create_namespaced_pod("team-a", pod)
    assert created.metadata.uid and created.metadata.generation == 1
    assert created.metadata.creation_timestamp is not None
    with pytest.raises(kubernetes.client.ApiException) as exists:
        core.create_namespaced_pod("team-a", pod)
    assert exists.value.status == 409 and status_of(exists.value)["reason"] == "AlreadyExists"
    assert status_of(exists.value)["message"] == 'pods "p1" already exists'
    assert core.read_namespaced_pod("p1", "team-a").spec.containers[0].image == "localhost/img"
    assert [p.metadata.name for p in core.list_pod_for_all_namespaces().items] == ["p1"]
    core.delete_namespaced_pod("p1", "team-a")
    with pytest.raises(kubernetes.client.ApiException) as gone:
        core.read_namespaced_pod("p1", "team-a")
    assert gone.value.status == 404


def test_default_namespace_exists_and_namespace_delete_cascades(server, core, vms):
    assert {n.metadata.name for n in core.list_namespace().items} >= {"default", "kube-system"}
    core.create_namespace({"metadata": {"name": "doomed"}})
    vms.create(body=vm_manifest("vm1", namespace="doomed"), namespace="doomed")
    assert (
        server.get_object("kubevirt.io/v1", "VirtualMachineInstance", "vm1", "doomed") is not None
    )
    deleted = core.delete_namespace("doomed")
    assert deleted is not None
    assert server.list_objects("kubevirt.io/v1", "VirtualMachine", "doomed") == []
    assert server.get_object("kubevirt.io/v1", "VirtualMachineInstance", "vm1", "doomed") is None


def test_list_shapes_and_cluster_wide_list(server, vms):
    server.seed(vm_manifest("a", namespace="ns1"))
    server.seed(vm_manifest("b", namespace="ns2"))
    status, _unused, doc = raw_request(server, "GET", "/apis/kubevirt.io/v1/virtualmachines")
    assert status == 200
    assert doc["kind"] == "VirtualMachineList" and doc["apiVersion"] == "kubevirt.io/v1"
    assert int(doc["metadata"]["resourceVersion"]) > 0 and "continue" not in doc["metadata"]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in doc["items"]] == [
        ("ns1", "a"),
        ("ns2", "b"),
    ]
    assert all(i["kind"] == "VirtualMachine" for i in doc["items"])
    assert [i.metadata.name for i in vms.get(namespace="ns2").items] == ["b"]
    # built-in typed lists carry no kind on their items, like the real server
    _unused, _unused, pods = raw_request(server, "GET", "/api/v1/namespaces")
    assert pods["kind"] == "NamespaceList" and "kind" not in pods["items"][0]


def test_status_error_bodies_have_the_real_shape(server):
    status, headers, body = raw_request(server, "GET", f"{VM_PATH}/nope")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'virtualmachines.kubevirt.io "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "kubevirt.io", "kind": "virtualmachines"},
        "code": 404,
    }
    status, _unused, body = raw_request(
        server, "GET", "/apis/kubevirt.io/v1/namespaces/default/widgets"
    )
    assert status == 404 and body["message"] == "the server could not find the requested resource"
    status, headers, body = raw_request(server, "HEAD", "/api/v1/namespaces/default")
    assert status == 200 and body is None and int(headers["Content-Length"]) > 0
    status, _unused, body = raw_request(server, "POST", f"{VM_PATH}/vm1", body=vm_manifest("vm1"))
    assert status == 405 and body["reason"] == "MethodNotAllowed"


def test_put_semantics(server, vms):
    created = vms.create(body=vm_manifest("vm1"), namespace="default").to_dict()
    stale = json.loads(json.dumps(created))
    created["metadata"]["labels"] = {"a": "1"}
    updated = vms.replace(body=created, namespace="default").to_dict()
    assert int(updated["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])
    stale["metadata"]["labels"] = {"a": "2"}
    with pytest.raises(dyn_exc.ConflictError) as conflict:
        vms.replace(body=stale, namespace="default")
    assert status_of(conflict.value)["message"] == (
        'Operation cannot be fulfilled on virtualmachines.kubevirt.io "vm1": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert status_of(conflict.value)["reason"] == "Conflict"
    # no resourceVersion: an unconditional update, allowed for custom resources
    del stale["metadata"]["resourceVersion"]
    assert vms.replace(body=stale, namespace="default").metadata.labels.a == "2"
    stale_patch = {"metadata": {"resourceVersion": "1", "labels": {"a": "3"}}}
    with pytest.raises(dyn_exc.ConflictError):
        vms.patch(
            name="vm1",
            namespace="default",
            body=stale_patch,
            content_type="application/merge-patch+json",
        )
    missing = vm_manifest("ghost")
    with pytest.raises(dyn_exc.NotFoundError):
        vms.replace(body=missing, namespace="default")
    status, _unused, body = raw_request(server, "PUT", f"{VM_PATH}/other", body=vm_manifest("vm1"))
    assert status == 400
    assert (
        body["message"] == "the name of the object (vm1) does not match the name on the URL (other)"
    )


def test_create_rejects_resource_version_and_bad_names(server):
    manifest = vm_manifest("vm1")
    manifest["metadata"]["resourceVersion"] = "12"
    status, _unused, body = raw_request(server, "POST", VM_PATH, body=manifest)
    assert (
        status == 500
        and body["message"] == "resourceVersion should not be set on objects to be created"
    )
    status, _unused, body = raw_request(server, "POST", VM_PATH, body=vm_manifest("Bad_Name"))
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith(
        'VirtualMachine.kubevirt.io "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 subdomain"
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    nameless = vm_manifest("x")
    nameless["metadata"] = {"generateName": "web-"}
    status, _unused, body = raw_request(server, "POST", VM_PATH, body=nameless)
    assert (
        status == 201
        and body["metadata"]["name"].startswith("web-")
        and len(body["metadata"]["name"]) == 9
    )
    nameless["metadata"] = {}
    status, _unused, body = raw_request(server, "POST", VM_PATH, body=nameless)
    assert (
        status == 422
        and "metadata.name: Required value: name or generateName is required" in body["message"]
    )
    bad_label = vm_manifest("vm2", labels={"app": "not ok!"})
    status, _unused, body = raw_request(server, "POST", VM_PATH, body=bad_label)
    assert status == 422 and body["details"]["causes"][0]["field"] == "metadata.labels"


def test_unknown_top_level_field_is_rejected(server):
    manifest = vm_manifest("vm1")
    manifest["extra"] = True
    status, _unused, body = raw_request(server, "POST", VM_PATH, body=manifest)
    assert status == 422
    assert (
        body["message"]
        == 'VirtualMachine.kubevirt.io "vm1" is invalid: extra: field not declared in schema'
    )


def test_resource_version_and_generation(server, dyn):
    rules = dyn.resources.get(api_version="monitoring.coreos.com/v1", kind="PrometheusRule")
    created = rules.create(body=prometheus_rule("r1"), namespace="default")
    rv0 = int(created.metadata.resourceVersion)
    assert created.metadata.generation == 1
    labelled = rules.patch(
        name="r1",
        namespace="default",
        body={"metadata": {"labels": {"release": "prom"}}},
        content_type="application/merge-patch+json",
    )
    assert labelled.metadata.generation == 1 and int(labelled.metadata.resourceVersion) > rv0
    changed = rules.patch(
        name="r1",
        namespace="default",
        body=[{"op": "replace", "path": "/spec/groups/0/rules/0/for", "value": "10m"}],
        content_type="application/json-patch+json",
    )
    assert changed.metadata.generation == 2
    same = rules.patch(
        name="r1",
        namespace="default",
        body={"spec": {"groups": changed.to_dict()["spec"]["groups"]}},
        content_type="application/merge-patch+json",
    )
    assert (
        same.metadata.resourceVersion == changed.metadata.resourceVersion
    )  # no-op: nothing written
    assert server.core.store.resource_version == int(changed.metadata.resourceVersion)


def test_status_is_ignored_on_main_writes_and_set_through_status(server, dyn):
    rules = dyn.resources.get(api_version="monitoring.openshift.io/v1", kind="AlertingRule")
    server.seed(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openshift-monitoring"}}
    )
    body = alerting_rule("a1")
    body["status"] = {"observedGeneration": 7}
    created = rules.create(body=body, namespace="openshift-monitoring").to_dict()
    assert "status" not in created
    created["status"] = {"observedGeneration": 1, "prometheusRule": {"name": "a1"}}
    assert "status" not in rules.replace(body=created, namespace="openshift-monitoring").to_dict()
    current = rules.get(name="a1", namespace="openshift-monitoring").to_dict()
    current["status"] = {"observedGeneration": 1, "prometheusRule": {"name": "a1"}}
    current["spec"]["groups"][0]["name"] = "ignored-by-status-writes"
    after = rules.status.replace(body=current, namespace="openshift-monitoring").to_dict()
    assert after["status"]["prometheusRule"]["name"] == "a1"
    assert (
        after["spec"]["groups"][0]["name"] == "vm-health" and after["metadata"]["generation"] == 1
    )
    bad = json.loads(json.dumps(after))
    bad["status"]["prometheusRule"] = {}
    with pytest.raises(dyn_exc.UnprocessibleEntityError) as invalid:
        rules.status.replace(body=bad, namespace="openshift-monitoring")
    assert "status.prometheusRule.name: Required value" in status_of(invalid.value)["message"]


def test_delete_returns_object_and_honours_preconditions(server, vms):
    created = vms.create(body=vm_manifest("vm1", run_strategy="Halted"), namespace="default")
    status, _unused, body = raw_request(
        server,
        "DELETE",
        f"{VM_PATH}/vm1",
        body={"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "nope"}},
    )
    assert status == 409 and "Precondition failed: UID in precondition: nope" in body["message"]
    deleted = vms.delete(name="vm1", namespace="default")
    assert deleted.kind == "VirtualMachine" and deleted.metadata.uid == created.metadata.uid
    with pytest.raises(dyn_exc.NotFoundError):
        vms.delete(name="vm1", namespace="default")


def test_finalizers_delay_deletion(server, vms):
    manifest = vm_manifest("vm1", run_strategy="Halted")
    manifest["metadata"]["finalizers"] = ["example.com/keep"]
    vms.create(body=manifest, namespace="default")
    marked = vms.delete(name="vm1", namespace="default")
    assert marked.metadata.deletionTimestamp
    assert vms.get(name="vm1", namespace="default").metadata.deletionTimestamp
    vms.patch(
        name="vm1",
        namespace="default",
        body={"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    with pytest.raises(dyn_exc.NotFoundError):
        vms.get(name="vm1", namespace="default")


# --------------------------------------------------------------------------- patch


def test_merge_and_json_patch(server, vms):
    vms.create(body=vm_manifest("vm1", labels={"a": "1", "b": "2"}), namespace="default")
    merged = vms.patch(
        name="vm1",
        namespace="default",
        body={"metadata": {"labels": {"a": None, "c": "3"}}},
        content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels.to_dict() == {"b": "2", "c": "3"}
    ops = [
        {"op": "test", "path": "/metadata/labels/b", "value": "2"},
        {"op": "add", "path": "/metadata/labels/d", "value": "4"},
        {"op": "replace", "path": "/metadata/labels/b", "value": "20"},
        {"op": "remove", "path": "/metadata/labels/c"},
        {"op": "copy", "from": "/metadata/labels/d", "path": "/metadata/labels/e"},
        {"op": "move", "from": "/metadata/labels/e", "path": "/metadata/labels/f"},
        {
            "op": "add",
            "path": "/spec/template/spec/domain/devices/panicDevices",
            "value": [{"model": "pvpanic"}],
        },
    ]
    patched = vms.patch(
        name="vm1", namespace="default", body=ops, content_type="application/json-patch+json"
    )
    assert patched.metadata.labels.to_dict() == {"b": "20", "d": "4", "f": "4"}
    assert patched.spec.template.spec.domain.devices.panicDevices[0].model == "pvpanic"


def test_failed_json_patch_test_op_is_422_and_stores_nothing(server, vms):
    before = vms.create(body=vm_manifest("vm1"), namespace="default")
    ops = [
        {"op": "replace", "path": "/spec/runStrategy", "value": "Halted"},
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
    ]
    status, _unused, body = raw_request(
        server, "PATCH", f"{VM_PATH}/vm1", body=ops, content_type="application/json-patch+json"
    )
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"] == "the server rejected our request due to an error in our request"
    after = vms.get(name="vm1", namespace="default")
    assert (
        after.spec.runStrategy == "Always"
        and after.metadata.resourceVersion == before.metadata.resourceVersion
    )
    status, _unused, body = raw_request(
        server,
        "PATCH",
        f"{VM_PATH}/vm1",
        body=[{"op": "explode", "path": "/x"}],
        content_type="application/json-patch+json",
    )
    assert status == 400
    status, _unused, _unused = raw_request(
        server,
        "PATCH",
        f"{VM_PATH}/vm1",
        body=[{"op": "remove", "path": "/nope"}],
        content_type="application/json-patch+json",
    )
    assert status == 422


@pytest.mark.parametrize(
    ("path", "manifest"),
    [
        (VM_PATH + "/vm1", vm_manifest("vm1")),
        (
            "/apis/monitoring.coreos.com/v1/namespaces/default/prometheusrules/vm1",
            prometheus_rule("vm1", "default"),
        ),
    ],
)
def test_strategic_merge_patch_is_415_for_custom_resources(server, path, manifest):
    server.seed(manifest)
    status, _unused, body = raw_request(
        server,
        "PATCH",
        path,
        body={"metadata": {"labels": {"x": "y"}}},
        content_type="application/strategic-merge-patch+json",
    )
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    assert body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


def test_strategic_merge_patch_works_for_builtin_kinds(server, core, dyn):
    core.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "localhost/i"}]},
        },
    )
    patched = core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"x": "y"}}})
    assert patched.metadata.labels == {"x": "y"}
    templates = dyn.resources.get(api_version="template.openshift.io/v1", kind="Template")
    templates.create(
        body={
            "apiVersion": "template.openshift.io/v1",
            "kind": "Template",
            "metadata": {"name": "t"},
            "objects": [],
        },
        namespace="default",
    )
    patched_template = templates.patch(name="t", namespace="default", body={"message": "hi"})
    assert patched_template.message == "hi"


def test_server_side_apply(server, dyn, vms):
    applied = dyn.server_side_apply(
        vms, body=vm_manifest("vm1"), namespace="default", field_manager="tests"
    )
    assert applied.metadata.generation == 1
    changed = vm_manifest("vm1", labels={"applied": "yes"})
    again = dyn.server_side_apply(
        vms, body=changed, name="vm1", namespace="default", field_manager="tests"
    )
    assert again.metadata.labels.applied == "yes"
    status, _unused, body = raw_request(
        server, "PATCH", f"{VM_PATH}/vm1", body=changed, content_type="application/apply-patch+yaml"
    )
    assert status == 422 and "fieldManager: Required value" in body["message"]


# --------------------------------------------------------------------------- dry run


def test_dry_run_validates_and_stores_nothing(server, vms):
    rv = server.core.store.resource_version
    dry = vms.create(body=vm_manifest("vm1"), namespace="default", dry_run="All")
    assert dry.metadata.uid and not dry.metadata.resourceVersion
    assert server.core.store.resource_version == rv
    with pytest.raises(dyn_exc.NotFoundError):
        vms.get(name="vm1", namespace="default")
    bad = vm_manifest("vm1")
    bad["spec"]["template"]["spec"]["readinessProbe"] = {"bogus": 1}
    with pytest.raises(dyn_exc.UnprocessibleEntityError):
        vms.create(body=bad, namespace="default", dry_run="All")
    created = vms.create(body=vm_manifest("vm1"), namespace="default")
    rv = server.core.store.resource_version
    vms.patch(
        name="vm1",
        namespace="default",
        body={"spec": {"runStrategy": "Halted"}},
        content_type="application/merge-patch+json",
        dry_run="All",
    )
    body = created.to_dict()
    body["metadata"]["labels"] = {"dry": "run"}
    assert vms.replace(body=body, namespace="default", dry_run="All").metadata.labels.dry == "run"
    vms.delete(name="vm1", namespace="default", dry_run="All")
    assert server.core.store.resource_version == rv
    stored = vms.get(name="vm1", namespace="default")
    assert stored.spec.runStrategy == "Always" and not stored.to_dict()["metadata"].get("labels")
    assert (
        server.get_object("kubevirt.io/v1", "VirtualMachineInstance", "vm1", "default") is not None
    )
    status, _unused, err = raw_request(
        server, "POST", f"{VM_PATH}?dryRun=Maybe", body=vm_manifest("vm2")
    )
    assert status == 422
    assert err["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Maybe"}: '
        'supported values: "All"'
    )
    assert [r["dry_run"] for r in server.requests() if r["verb"] in ("create", "delete")][:2] == [
        True,
        True,
    ]


# --------------------------------------------------------------------------- selectors


@pytest.fixture
def labelled(server):
    for name, labels in (
        ("a", {"env": "prod", "tier": "web"}),
        ("b", {"env": "dev", "tier": "web"}),
        ("c", {"env": "prod"}),
        ("d", {"team": "x"}),
    ):
        server.seed(vm_manifest(name, run_strategy="Halted", labels=labels))


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", "ac"),
        ("env==prod", "ac"),
        ("env!=prod", "bd"),
        ("env in (prod,dev)", "abc"),
        ("env notin (prod)", "bd"),
        ("tier", "ab"),
        ("!tier", "cd"),
        ("env=prod,tier=web", "a"),
        ("env in (prod), !tier", "c"),
        ("", "abcd"),
    ],
)
def test_label_selectors(labelled, vms, selector, expected):
    names = "".join(
        i.metadata.name for i in vms.get(namespace="default", label_selector=selector).items
    )
    assert names == expected


@pytest.mark.parametrize(
    "selector", ["env in prod", "env in ()", "=x", "a b", "env=prod,", "x=in valid!"]
)
def test_bad_label_selector_is_400(server, selector):
    status, _unused, body = raw_request(
        server, "GET", f"{VM_PATH}?labelSelector={kubernetes.client.api_client.quote(selector)}"
    )
    assert status == 400 and body["reason"] == "BadRequest"


def test_field_selectors(labelled, server, vms):
    assert [
        i.metadata.name
        for i in vms.get(namespace="default", field_selector="metadata.name=a").items
    ] == ["a"]
    names = [
        i.metadata.name
        for i in vms.get(namespace="default", field_selector="metadata.name!=a").items
    ]
    assert names == ["b", "c", "d"]
    all_ns = vms.get(field_selector="metadata.namespace==default,metadata.name=b").items
    assert [i.metadata.name for i in all_ns] == ["b"]
    with pytest.raises(dyn_exc.BadRequestError) as bad:
        vms.get(namespace="default", field_selector="spec.running=true")
    assert status_of(bad.value)["message"] == "field label not supported: spec.running"


def test_pagination_over_1234_vms(server, vms):
    server.seed_vms(1234, run_strategy="Halted", name_prefix="vm-")
    seen: list[str] = []
    pages, remaining = [], []
    token = None
    while True:
        page = vms.get(namespace="default", limit=500, _continue=token)
        pages.append(len(page.items))
        remaining.append(page.metadata.remainingItemCount)
        seen.extend(i.metadata.name for i in page.items)
        token = page.metadata["continue"]
        if not token:
            break
    assert pages == [500, 500, 234]
    assert remaining == [734, 234, None]
    assert len(seen) == len(set(seen)) == 1234
    status, _unused, body = raw_request(server, "GET", f"{VM_PATH}?limit=10&continue=not-a-token")
    assert status == 400 and body["reason"] == "BadRequest"
    first = vms.get(namespace="default", limit=10)
    server.reset()
    status, _unused, body = raw_request(
        server, "GET", f"{VM_PATH}?limit=10&continue={first.metadata['continue']}"
    )
    assert status == 410 and body["reason"] == "Expired"
