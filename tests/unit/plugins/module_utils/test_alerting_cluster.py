"""Unit tests of the cluster target service and the runner, on an in-memory API."""

import copy
import itertools

import pytest

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting import (
    cluster_target,
    render,
    rules,
    runner,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.cluster_target import (
    ClusterTarget,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import (
    ApiError,
    ValidationError,
    VmHealthError,
)

OPERATOR = rules.TARGETS["prometheus_operator"]
PATH = "/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheusrules/vm-health"


class Api:
    """Objects by path; POST/PUT/DELETE with resourceVersion checks; every call recorded."""

    def __init__(self):
        self.objects = {}
        self.calls = []
        self.rv = itertools.count(1)
        self.sneak_in = 0  # concurrent changes applied right before the next N PUTs

    def writes(self):
        return [c for c in self.calls if c[0] != "GET"]

    def get(self, path):
        self.calls.append(("GET", path, None))
        if path not in self.objects:
            raise ApiError("not found", status=404, reason="NotFound")
        return copy.deepcopy(self.objects[path])

    def request(self, method, path, body=None, query=None, content_type=None):
        self.calls.append((method, path, copy.deepcopy(body)))
        if method == "POST":
            obj = copy.deepcopy(body)
            full = path + "/" + obj["metadata"]["name"]
            if full in self.objects:
                raise ApiError("exists", status=409, reason="AlreadyExists")
            obj["metadata"]["resourceVersion"] = str(next(self.rv))
            self.objects[full] = obj
            return copy.deepcopy(obj)
        if method == "PUT":
            if self.sneak_in:
                self.sneak_in -= 1
                self.objects[path]["metadata"]["resourceVersion"] = str(next(self.rv))
            if (
                body["metadata"].get("resourceVersion")
                != self.objects[path]["metadata"]["resourceVersion"]
            ):
                raise ApiError("the object has been modified", status=409, reason="Conflict")
            obj = copy.deepcopy(body)
            obj["metadata"]["resourceVersion"] = str(next(self.rv))
            self.objects[path] = obj
            return copy.deepcopy(obj)
        if method == "DELETE":
            if path not in self.objects:
                raise ApiError("not found", status=404, reason="NotFound")
            del self.objects[path]
            return {}
        raise AssertionError(method)


def desired(labels=None, **kwargs):
    groups = rules.build_groups({"rules": kwargs.get("rules", ["all"])})
    return render.desired_object(OPERATOR, "vm-health", "monitoring", labels, groups)


def service(api, **kwargs):
    return ClusterTarget(api, OPERATOR, "vm-health", "monitoring", **kwargs)


def test_create_then_unchanged_without_writes():
    api = Api()
    result = service(api).apply(desired({"release": "kps"}))
    assert result["changed"] and result["action"] == "created"
    assert [c[0] for c in api.calls] == ["GET", "POST"]
    assert api.calls[1][1] == "/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheusrules"
    api.calls.clear()
    result = service(api).apply(desired({"release": "kps"}))
    assert not result["changed"] and result["action"] == "unchanged"
    assert api.writes() == []


def test_update_is_a_put_guarded_by_resource_version_and_keeps_foreign_labels():
    api = Api()
    service(api).apply(desired({"release": "kps"}))
    api.objects[PATH]["metadata"]["labels"]["owner"] = "someone"
    version = api.objects[PATH]["metadata"]["resourceVersion"]
    api.calls.clear()
    result = service(api, diff_mode=True).apply(
        desired({"release": "kps"}, rules=["VirtualMachineGuestOSPanic"])
    )
    assert result["action"] == "updated"
    method, path, body = api.calls[-1]
    assert (method, path) == ("PUT", PATH)
    assert body["metadata"]["resourceVersion"] == version
    assert api.objects[PATH]["metadata"]["labels"] == {"release": "kps", "owner": "someone"}
    assert len(result["diff"]["before"]["spec"]["groups"][0]["rules"]) == 3
    assert len(result["diff"]["after"]["spec"]["groups"][0]["rules"]) == 1


def test_conflict_is_read_again_and_retried_a_bounded_number_of_times():
    api = Api()
    service(api).apply(desired())
    api.sneak_in = 1
    assert service(api).apply(desired(rules=["GuestRebootedByWatchdog"]))["action"] == "updated"
    assert [c[0] for c in api.writes()].count("PUT") == 2
    api.sneak_in = 10
    with pytest.raises(VmHealthError, match="kept changing concurrently"):
        service(api).apply(desired(rules=["VirtualMachinePodNotReady"]))
    assert [c[0] for c in api.writes()].count("PUT") == 2 + cluster_target.CONFLICT_ATTEMPTS


def test_check_mode_reads_only():
    api = Api()
    result = service(api, check_mode=True, diff_mode=True).apply(desired())
    assert result["action"] == "created" and result["diff"]["before"] == {}
    service(api).apply(desired())
    api.calls.clear()
    assert (
        service(api, check_mode=True).apply(desired(rules=["GuestRebootedByWatchdog"]))["action"]
        == "updated"
    )
    assert service(api, check_mode=True).remove()["action"] == "removed"
    assert api.writes() == []


def test_remove():
    api = Api()
    service(api).apply(desired())
    version = api.objects[PATH]["metadata"]["resourceVersion"]
    result = service(api, diff_mode=True).remove()
    assert result["action"] == "removed" and result["diff"]["after"] == {}
    assert api.calls[-1][0] == "DELETE" and api.calls[-1][2]["preconditions"] == {
        "resourceVersion": version
    }
    api.calls.clear()
    assert service(api).remove()["action"] == "unchanged"
    assert api.writes() == []


def test_api_errors_name_the_object():
    class Failing(Api):
        def request(self, method, path, body=None, query=None, content_type=None):
            raise ApiError('namespaces "monitoring" not found', status=404, reason="NotFound")

    with pytest.raises(
        VmHealthError,
        match="Failed to create PrometheusRule 'monitoring/vm-health': namespaces .* CRD",
    ):
        service(Failing()).apply(desired())


# --------------------------------------------------------------------------- runner


def module_params(**kwargs):
    values = {
        "target": "prometheus_operator",
        "state": "present",
        "name": "vm-health",
        "namespace": "monitoring",
        "labels": None,
        "rules": None,
        "group_name": None,
        "group_interval": None,
        "rule_overrides": None,
        "groups": None,
        "runbook_base_url": None,
        "path": None,
        "backup": False,
        "reload": False,
    }
    values.update(kwargs)
    return values


class NoParser:
    def parse(self, expr):
        return expr


def test_runner_connects_only_after_validation():
    connected = []

    def connect():
        connected.append(True)
        return Api()

    bad = module_params(
        groups=[{"name": "g", "rules": [{"alert": "A", "expr": "up", "for": "5 min"}]}]
    )
    with pytest.raises(ValidationError, match='group "g", alert "A": for'):
        runner.run(bad, connect=connect, parser=NoParser())
    with pytest.raises(ValidationError, match="openshift-monitoring"):
        runner.run(
            module_params(target="openshift", namespace="default"),
            connect=connect,
            parser=NoParser(),
        )
    with pytest.raises(VmHealthError, match="path: only valid with target=file"):
        runner.run(module_params(path="/tmp/x.yml"), connect=connect, parser=NoParser())
    assert connected == []
    result, warnings = runner.run(module_params(), connect=connect, parser=NoParser())
    assert connected == [True] and warnings == []
    assert result["action"] == "created" and result["checked_with"] == "promql_parser"
    assert result["alerts"] == list(rules.alert_names(rules.build_groups({})))


def test_runner_openshift_defaults_namespace_and_refuses_keep_firing_for():
    api = Api()
    result, _warnings = runner.run(
        module_params(target="openshift", namespace=None), connect=lambda: api, parser=NoParser()
    )
    assert result["namespace"] == "openshift-monitoring" and result["kind"] == "AlertingRule"
    over = {"VirtualMachinePodNotReady": {"keep_firing_for": "5m"}}
    with pytest.raises(
        ValidationError, match="keep_firing_for is not supported by the openshift target"
    ):
        runner.run(
            module_params(target="openshift", namespace=None, rule_overrides=over),
            connect=lambda: api,
            parser=NoParser(),
        )


def test_runner_absent_needs_no_rules():
    api = Api()
    runner.run(module_params(), connect=lambda: api, parser=NoParser())
    result, _warnings = runner.run(
        module_params(state="absent", rules=["nonsense"]), connect=lambda: api, parser=NoParser()
    )
    assert result["action"] == "removed" and result["alerts"] == []
