"""Helpers for tests that use the test double: manifests, clients and raw HTTP calls."""

from __future__ import annotations

import copy
import http.client
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

import kubernetes

from .server import DEFAULT_VM_TEMPLATE_SPEC, KubeTestServer

DURATION_PATTERN = (
    "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)


def vm_manifest(
    name: str,
    namespace: str = "default",
    run_strategy: str | None = "Always",
    labels: dict[str, str] | None = None,
    template_spec: dict[str, Any] | None = None,
    template_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A minimal valid kubevirt.io/v1 VirtualMachine."""
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": dict(template_labels or {"kubevirt.io/domain": name})},
            "spec": copy.deepcopy(template_spec or DEFAULT_VM_TEMPLATE_SPEC),
        }
    }
    if run_strategy is not None:
        spec["runStrategy"] = run_strategy
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": spec,
    }


def prometheus_rule(name: str, namespace: str = "default", for_: str = "5m") -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "groups": [
                {
                    "name": "vm-health",
                    "rules": [
                        {
                            "alert": "VirtualMachineNotReady",
                            "expr": 'kube_pod_container_status_ready{container="compute"} == 0',
                            "for": for_,
                            "labels": {"severity": "warning"},
                        }
                    ],
                }
            ]
        },
    }


def alerting_rule(name: str, namespace: str = "openshift-monitoring") -> dict[str, Any]:
    rule = prometheus_rule(name, namespace)
    rule.update({"apiVersion": "monitoring.openshift.io/v1", "kind": "AlertingRule"})
    return rule


def api_client(server: KubeTestServer) -> kubernetes.client.ApiClient:
    """A kubernetes ApiClient built from the server's kubeconfig (TLS verification on)."""
    return kubernetes.config.new_client_from_config(str(server.kubeconfig_path))


def raw_request(
    server: KubeTestServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    token: str | None | bool = True,
    content_type: str = "application/json",
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request with the standard library; returns (status, headers, decoded JSON or text)."""
    url = urlsplit(server.url)
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=str(server.ca_path))
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            url.hostname, url.port, context=context
        )
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port)
    all_headers = {"Accept": "application/json", **(headers or {})}
    if token is True:
        all_headers["Authorization"] = f"Bearer {server.token}"
    elif isinstance(token, str):
        all_headers["Authorization"] = f"Bearer {token}"
    payload = None
    if body is not None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        all_headers["Content-Type"] = content_type
    try:
        conn.request(method, path, body=payload, headers=all_headers)
        resp = conn.getresponse()
        data = resp.read()
        resp_headers = dict(resp.getheaders())
    finally:
        conn.close()
    try:
        decoded: Any = json.loads(data) if data else None
    except ValueError:
        decoded = data.decode(errors="replace")
    return resp.status, resp_headers, decoded
