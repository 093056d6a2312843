"""The API resources this test double serves, and their discovery documents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CRUD_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
# Content types the API server accepts for PATCH on custom resources (CRDs) ...
CR_PATCH_TYPES = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
]
# ... and on built-in / aggregated types that have Go structs (strategic merge works there)
BUILTIN_PATCH_TYPES = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
]


def _get_path(obj: dict[str, Any], dotted: str) -> str:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


@dataclass(frozen=True)
class ResourceType:
    """One served resource (GroupVersionResource plus its behaviour in this server)."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = True
    crd: bool = False  # served by apiextensions (no strategic merge patch)
    tracks_generation: bool = True
    extra_field_labels: tuple[str, ...] = ()
    schema_key: str = ""  # key into SchemaSet (CRDs) or BUILTIN_SCHEMAS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def patch_types(self) -> list[str]:
        return CR_PATCH_TYPES if self.crd else BUILTIN_PATCH_TYPES

    def field_getter(self, obj: dict[str, Any]) -> Callable[[str], str]:
        return lambda label: _get_path(obj, label)

    def supported_field_labels(self) -> set[str]:
        labels = {"metadata.name"}
        if self.namespaced:
            labels.add("metadata.namespace")
        labels.update(self.extra_field_labels)
        return labels

    def discovery_entries(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": CRUD_VERBS,
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.has_status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return entries


NAMESPACES = ResourceType(
    "",
    "v1",
    "namespaces",
    "namespace",
    "Namespace",
    namespaced=False,
    short_names=("ns",),
    tracks_generation=False,
    extra_field_labels=("status.phase",),
    schema_key="namespaces",
)
PODS = ResourceType(
    "",
    "v1",
    "pods",
    "pod",
    "Pod",
    namespaced=True,
    short_names=("po",),
    categories=("all",),
    extra_field_labels=(
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    schema_key="pods",
)
VIRTUAL_MACHINES = ResourceType(
    "kubevirt.io",
    "v1",
    "virtualmachines",
    "virtualmachine",
    "VirtualMachine",
    namespaced=True,
    short_names=("vm", "vms"),
    categories=("all",),
    crd=True,
    schema_key="virtualmachines.kubevirt.io",
)
VIRTUAL_MACHINE_INSTANCES = ResourceType(
    "kubevirt.io",
    "v1",
    "virtualmachineinstances",
    "virtualmachineinstance",
    "VirtualMachineInstance",
    namespaced=True,
    short_names=("vmi", "vmis"),
    categories=("all",),
    crd=True,
    schema_key="virtualmachineinstances.kubevirt.io",
)
TEMPLATES = ResourceType(
    "template.openshift.io",
    "v1",
    "templates",
    "template",
    "Template",
    namespaced=True,
    has_status=False,
    schema_key="templates",
)
PROMETHEUS_RULES = ResourceType(
    "monitoring.coreos.com",
    "v1",
    "prometheusrules",
    "prometheusrule",
    "PrometheusRule",
    namespaced=True,
    short_names=("promrule",),
    categories=("prometheus-operator",),
    crd=True,
    schema_key="prometheusrules.monitoring.coreos.com",
)
ALERTING_RULES = ResourceType(
    "monitoring.openshift.io",
    "v1",
    "alertingrules",
    "alertingrule",
    "AlertingRule",
    namespaced=True,
    crd=True,
    schema_key="alertingrules.monitoring.openshift.io",
)

RESOURCES: tuple[ResourceType, ...] = (
    NAMESPACES,
    PODS,
    VIRTUAL_MACHINES,
    VIRTUAL_MACHINE_INSTANCES,
    TEMPLATES,
    PROMETHEUS_RULES,
    ALERTING_RULES,
)
BY_GVR: dict[tuple[str, str, str], ResourceType] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in RESOURCES}

SUBRESOURCES_GROUP = "subresources.kubevirt.io"
# KubeVirt's aggregated API lists its subresources with only name and namespaced set
# (pkg/virt-api/api.go builds metav1.APIResource{Name, Namespaced}); Go serialises the rest as
# empty kind/singularName and null verbs. We serve the lifecycle subresources we implement.
KUBEVIRT_SUBRESOURCES = ("start", "stop", "restart")


def _group_versions() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for res in RESOURCES:
        if res.group:
            versions = groups.setdefault(res.group, [])
            if res.version not in versions:
                versions.append(res.version)
    groups[SUBRESOURCES_GROUP] = ["v1"]
    return groups


GROUP_VERSIONS = _group_versions()


def api_group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUP_VERSIONS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [api_group(g) for g in GROUP_VERSIONS],
    }


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    if group == SUBRESOURCES_GROUP:
        if version not in GROUP_VERSIONS[group]:
            return None
        resources = [
            {
                "name": f"virtualmachines/{sub}",
                "singularName": "",
                "namespaced": True,
                "kind": "",
                "verbs": None,
            }
            for sub in KUBEVIRT_SUBRESOURCES
        ]
    else:
        served = [r for r in RESOURCES if r.group == group and r.version == version]
        if not served:
            return None
        resources = [entry for r in served for entry in r.discovery_entries()]
    group_version = f"{group}/{version}" if group else version
    doc: dict[str, Any] = {
        "kind": "APIResourceList",
        "groupVersion": group_version,
        "resources": resources,
    }
    if group:
        doc["apiVersion"] = "v1"
    return doc


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


VERSION_INFO = {
    "major": "1",
    "minor": "33",
    "emulationMajor": "1",
    "emulationMinor": "33",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "32",
    "gitVersion": "v1.33.0-kube-test-server",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_STR = {"type": "string"}
_OPAQUE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

# Our own structural schemas for the non-CRD kinds: top-level fields are strict, bodies opaque.
BUILTIN_SCHEMAS: dict[str, dict[str, Any]] = {
    "namespaces": {
        "type": "object",
        "properties": {
            "apiVersion": _STR,
            "kind": _STR,
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {"finalizers": {"type": "array", "items": _STR}},
            },
            "status": _OPAQUE,
        },
    },
    "pods": {
        "type": "object",
        "properties": {
            "apiVersion": _STR,
            "kind": _STR,
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "required": ["containers"],
                "properties": {
                    "containers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "image"],
                            "x-kubernetes-preserve-unknown-fields": True,
                            "properties": {"name": _STR, "image": _STR},
                        },
                    }
                },
            },
            "status": _OPAQUE,
        },
    },
    # template.openshift.io/v1 Template (served by openshift-apiserver, not a CRD)
    "templates": {
        "type": "object",
        "required": ["objects"],
        "properties": {
            "apiVersion": _STR,
            "kind": _STR,
            "metadata": {"type": "object"},
            "message": _STR,
            "labels": {"type": "object", "additionalProperties": _STR},
            "objects": {"type": "array", "items": _OPAQUE},
            "parameters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": _STR,
                        "displayName": _STR,
                        "description": _STR,
                        "value": _STR,
                        "generate": _STR,
                        "from": _STR,
                        "required": {"type": "boolean"},
                    },
                },
            },
        },
    },
}


@dataclass
class RouteTarget:
    """A parsed API path."""

    resource: ResourceType | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    kubevirt_action: str | None = None  # start/stop/restart on subresources.kubevirt.io


class RouteError(LookupError):
    """The path names no served resource."""


def parse_resource_path(parts: list[str]) -> RouteTarget:
    """Parse '/api/v1/...' or '/apis/<g>/<v>/...' (already split, without the empty head)."""
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        group, version, rest = parts[1], parts[2], parts[3:]
    target = RouteTarget()
    if group == SUBRESOURCES_GROUP:
        # /apis/subresources.kubevirt.io/v1/namespaces/<ns>/virtualmachines/<name>/<action>
        if (
            len(rest) == 5
            and rest[0] == "namespaces"
            and rest[2] == "virtualmachines"
            and version == "v1"
            and rest[4] in KUBEVIRT_SUBRESOURCES
        ):
            target.namespace, target.name, target.kubevirt_action = rest[1], rest[3], rest[4]
            target.resource = VIRTUAL_MACHINES
            return target
        raise RouteError("/".join(parts))
    if not rest:
        raise RouteError("/".join(parts))
    # namespace subresources (/api/v1/namespaces/<name>/status) look like a namespaced collection
    if (
        group == ""
        and rest[0] == "namespaces"
        and len(rest) == 3
        and rest[2] in ("status", "finalize")
    ):
        target.resource, target.name, target.subresource = NAMESPACES, rest[1], rest[2]
        return target
    if rest[0] == "namespaces" and len(rest) >= 3:
        target.namespace = rest[1]
        rest = rest[2:]
    resource = BY_GVR.get((group, version, rest[0]))
    if resource is None or (target.namespace is not None and not resource.namespaced):
        raise RouteError("/".join(parts))
    target.resource = resource
    if len(rest) >= 2:
        target.name = rest[1]
    if len(rest) == 3:
        if rest[2] != "status" or not resource.has_status:
            raise RouteError("/".join(parts))
        target.subresource = "status"
    if len(rest) > 3:
        raise RouteError("/".join(parts))
    return target
