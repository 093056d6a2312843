"""Operations of the Kubernetes API test double: auth, TLS, faults, request log, /_test/ API, CLI,
threading and performance with thousands of VirtualMachines."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes
import pytest
import urllib3
import yaml
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic import exceptions as dyn_exc

TESTS_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS_DIR))

from kube_test_server import KubeTestServer  # noqa: E402
from kube_test_server.testing import api_client, raw_request, vm_manifest  # noqa: E402

VM_PATH = "/apis/kubevirt.io/v1/namespaces/default/virtualmachines"


@pytest.fixture(scope="module")
def server():
    with KubeTestServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server):
    server.reset()
    server.set_latency(0)


@pytest.fixture(scope="module")
def api(server):
    return api_client(server)


@pytest.fixture(scope="module")
def dyn(api):
    return DynamicClient(api)


@pytest.fixture
def vms(dyn):
    return dyn.resources.get(api_version="kubevirt.io/v1", kind="VirtualMachine")


# --------------------------------------------------------------------------- auth and TLS


def test_bearer_token_is_required(server, api):
    status, _unused, body = raw_request(server, "GET", "/api/v1/namespaces", token=False)
    assert status == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert raw_request(server, "GET", "/version", token="wrong")[0] == 401
    config = kubernetes.client.Configuration()
    config.host = server.url
    config.ssl_ca_cert = str(server.ca_path)
    config.api_key = {"authorization": "Bearer wrong"}
    with pytest.raises(kubernetes.client.ApiException) as denied:
        kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config)).list_namespace()
    assert denied.value.status == 401
    assert server.requests()[-1]["status"] == 401


def test_kubeconfig_keeps_tls_verification_on(server, api):
    config = yaml.safe_load(server.kubeconfig_path.read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == server.url and server.url.startswith("https://127.0.0.1:")
    assert base64.b64decode(cluster["certificate-authority-data"]) == server.ca_path.read_bytes()
    assert config["users"][0]["user"]["token"] == server.token
    assert api.configuration.verify_ssl is True
    # a client that does not trust the throw-away CA is refused
    host, port = server.url[len("https://") :].split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/version")
    conn.close()
    # localhost is in the certificate too
    context = ssl.create_default_context(cafile=str(server.ca_path))
    conn = http.client.HTTPSConnection("localhost", int(port), context=context)
    conn.request("GET", "/version", headers={"Authorization": f"Bearer {server.token}"})
    assert conn.getresponse().status == 200
    conn.close()


def test_plain_http_mode(tmp_path):
    kubeconfig = tmp_path / "kc"
    with KubeTestServer(tls=False, kubeconfig_path=kubeconfig, token="t0ken") as srv:
        assert srv.url.startswith("http://127.0.0.1:") and srv.kubeconfig_path == kubeconfig
        assert "certificate-authority-data" not in kubeconfig.read_text()
        core = kubernetes.client.CoreV1Api(api_client(srv))
        assert "default" in [n.metadata.name for n in core.list_namespace().items]
    with pytest.raises(ValueError):
        KubeTestServer(host="0.0.0.0")


# --------------------------------------------------------------------------- faults


def test_conflict_and_error_faults(server, vms):
    vms.create(body=vm_manifest("vm1"), namespace="default")
    patch = {"metadata": {"labels": {"x": "1"}}}
    server.add_fault("conflict", method="PATCH", path_regex=r"/virtualmachines/vm1$")
    with pytest.raises(dyn_exc.ConflictError) as conflict:
        vms.patch(
            name="vm1", namespace="default", body=patch, content_type="application/merge-patch+json"
        )
    assert "the object has been modified" in json.loads(conflict.value.body)["message"]
    assert vms.patch(
        name="vm1", namespace="default", body=patch, content_type="application/merge-patch+json"
    )
    server.add_fault("error", count=2, path_regex="virtualmachines")
    with pytest.raises(dyn_exc.InternalServerError) as err:
        vms.get(name="vm1", namespace="default")
    assert json.loads(err.value.body)["reason"] == "InternalError"
    with pytest.raises(dyn_exc.InternalServerError):
        vms.get(name="vm1", namespace="default")
    assert vms.get(name="vm1", namespace="default").metadata.name == "vm1"
    server.add_fault("error", status=503)
    with pytest.raises(dyn_exc.ServiceUnavailableError):
        vms.get(name="vm1", namespace="default")
    server.add_fault(
        "conflict",
        method="PATCH",
        path_regex="/vm1$",
        concurrent_patch={"metadata": {"labels": {"owner": "someone-else"}}},
    )
    with pytest.raises(dyn_exc.ConflictError):
        vms.patch(
            name="vm1", namespace="default", body=patch, content_type="application/merge-patch+json"
        )
    assert vms.get(name="vm1", namespace="default").metadata.labels.owner == "someone-else"
    faulted = [r for r in server.requests() if r["fault"]]
    assert [r["fault"] for r in faulted] == ["conflict", "error", "error", "error", "conflict"]
    assert [r["status"] for r in faulted] == [409, 500, 500, 503, 409]


def test_throttle_fault(server, api):
    # POST: urllib3 retries GET/PUT/DELETE answered 429 + Retry-After by itself, but not POST
    server.add_fault("throttle", method="POST", retry_after=7)
    core = kubernetes.client.CoreV1Api(api)
    with pytest.raises(kubernetes.client.ApiException) as throttled:
        core.create_namespace({"metadata": {"name": "later"}})
    assert throttled.value.status == 429
    assert throttled.value.headers["Retry-After"] == "7"
    body = json.loads(throttled.value.body)
    assert body["reason"] == "TooManyRequests" and body["details"] == {"retryAfterSeconds": 7}
    assert server.get_object("v1", "Namespace", "later") is None


def test_drop_fault_closes_the_connection(server, api):
    core = kubernetes.client.CoreV1Api(api)
    server.add_fault("drop", method="POST")
    with pytest.raises(urllib3.exceptions.ProtocolError):
        core.create_namespace({"metadata": {"name": "dropped"}})
    assert server.get_object("v1", "Namespace", "dropped") is None
    # urllib3 retries idempotent requests once the connection drops: one drop is invisible to GET
    server.add_fault("drop", method="GET")
    mark = server.mark()
    assert core.list_namespace().items
    assert [r["status"] for r in server.requests(mark)] == [0, 200]


def test_latency_fault_and_global_latency(server, vms):
    vms.create(body=vm_manifest("vm1", run_strategy="Halted"), namespace="default")
    server.add_fault("latency", latency=0.3, path_regex="/vm1$")
    started = time.perf_counter()
    vms.get(name="vm1", namespace="default")
    assert time.perf_counter() - started >= 0.3
    server.set_latency(0.02)
    started = time.perf_counter()
    for _unused in range(5):
        vms.get(name="vm1", namespace="default")
    assert time.perf_counter() - started >= 0.1
    assert server.requests()[-1]["duration"] >= 0.02


def test_faults_skip_discovery_unless_asked(server):
    server.add_fault("error")
    assert raw_request(server, "GET", "/apis")[0] == 200
    assert raw_request(server, "GET", "/api/v1/namespaces")[0] == 500
    server.add_fault("error", path_regex="^/apis$", discovery=True)
    assert raw_request(server, "GET", "/apis")[0] == 500


# --------------------------------------------------------------------------- request log


def test_request_log(server, vms):
    mark = server.mark()
    vms.create(body=vm_manifest("vm1"), namespace="default")
    vms.get(name="vm1", namespace="default")
    vms.patch(
        name="vm1",
        namespace="default",
        body={"metadata": {"labels": {"a": "b"}}},
        content_type="application/merge-patch+json",
        dry_run="All",
    )
    vms.patch(
        name="vm1",
        namespace="default",
        body={"metadata": {"labels": {"a": "b"}}},
        content_type="application/merge-patch+json",
    )
    raw_request(server, "GET", "/_test/health")
    entries = server.requests(mark)
    assert [(e["method"], e["verb"]) for e in entries] == [
        ("POST", "create"),
        ("GET", "get"),
        ("PATCH", "patch"),
        ("PATCH", "patch"),
    ]
    patch = entries[2]
    assert patch["dry_run"] is True and patch["query"] == {"dryRun": "All"}
    assert patch["content_type"] == "application/merge-patch+json" and patch["status"] == 200
    assert patch["path"] == f"{VM_PATH}/vm1" and patch["resource"] == "virtualmachines"
    assert isinstance(patch["time"], float) and patch["duration"] >= 0
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    assert server.writes(mark) == 2  # the dry-run patch is not a write
    assert server.count_requests(mark, verb="patch") == 2
    assert server.count_requests(mark, verb="patch", dry_run=False) == 1
    status, _unused, summary = raw_request(server, "GET", f"/_test/requests/summary?since={mark}")
    assert (
        status == 200
        and summary["by_verb"] == {"create": 1, "get": 1, "patch": 2}
        and summary["writes"] == 2
    )
    status, _unused, counted = raw_request(
        server, "GET", f"/_test/requests/count?since={mark}&writes=true"
    )
    assert counted["count"] == 2
    server.clear_requests()
    assert server.requests() == []


# --------------------------------------------------------------------------- /_test/ API


def test_admin_http_endpoints(server):
    def call(method, path, body=None):
        return raw_request(server, method, path, body=body, token=False)

    assert call("GET", "/_test/health")[2] == {"ok": True, "url": server.url}
    status, _unused, seeded = call(
        "POST", "/_test/objects", {"items": [vm_manifest("vm1", namespace="team")]}
    )
    assert status == 200 and seeded["items"][0]["metadata"]["namespace"] == "team"
    assert (
        call(
            "GET",
            "/_test/objects?apiVersion=kubevirt.io/v1&kind=VirtualMachine&name=vm1&namespace=team",
        )[0]
        == 200
    )
    status, _unused, invalid = call("POST", "/_test/objects", vm_manifest("Bad Name"))
    assert status == 422 and invalid["reason"] == "Invalid"
    assert call(
        "POST", "/_test/seed-vms", {"count": 3, "namespace": "bulk", "labels": {"idx": "{i}"}}
    )[2] == {
        "created": 3,
        "first": "vm-0",
    }
    assert server.get_object("kubevirt.io/v1", "VirtualMachine", "vm-2", "bulk")["metadata"][
        "labels"
    ] == {"idx": "2"}
    assert (
        call("POST", "/_test/faults", {"type": "throttle", "count": 2, "match": {"method": "GET"}})[
            0
        ]
        == 200
    )
    assert call("GET", "/_test/faults")[2][0]["remaining"] == 2
    assert call("POST", "/_test/faults", {"type": "boom"})[0] == 400
    assert call("DELETE", "/_test/faults")[0] == 200 and call("GET", "/_test/faults")[2] == []
    assert call("POST", "/_test/config", {"latency": 0.001})[2]["latency"] == 0.001
    assert server.latency == 0.001
    assert call("GET", "/_test/schemas")[2]["virtualmachines.kubevirt.io"] in ("crd", "fallback")
    assert call("GET", "/_test/seq")[2] == {"seq": server.mark()}
    raw_request(server, "GET", "/api/v1/namespaces")
    raw_request(server, "GET", "/api/v1/namespaces/default")
    status, _unused, logged = call("GET", "/_test/requests?since=0&last=1")
    assert status == 200 and logged["seq"] == server.mark()
    assert [r["path"] for r in logged["requests"]] == ["/api/v1/namespaces/default"]
    assert len(call("GET", "/_test/requests?since=0")[2]["requests"]) == 2
    assert call("POST", "/_test/requests/clear")[0] == 200
    assert call("POST", "/_test/reset")[0] == 200
    assert server.list_objects("kubevirt.io/v1", "VirtualMachine") == []
    assert call("GET", "/_test/nope")[0] == 404
    assert call("POST", "/_test/faults", b"{not json")[0] == 400
    assert server.requests() == []  # /_test/ calls are never logged


# --------------------------------------------------------------------------- CLI


def test_cli_serves_until_sigterm(tmp_path):
    ready, kubeconfig = tmp_path / "ready.json", tmp_path / "x" / "kubeconfig"
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kube_test_server",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            "--latency-ms",
            "1",
            "--ready-file",
            str(ready),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None, "the server exited early"
            assert time.monotonic() < deadline, "no ready file"
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        assert info["pid"] == proc.pid and info["kubeconfig"] == str(kubeconfig)
        assert proc.stdout.readline().strip() == info["url"]
        core = kubernetes.client.CoreV1Api(
            kubernetes.config.new_client_from_config(str(kubeconfig))
        )
        assert "default" in [n.metadata.name for n in core.list_namespace().items]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert not ready.exists()


# --------------------------------------------------------------------------- threads


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kube-test-server")]


def test_concurrent_writes_and_clean_stop():
    before = set(_server_threads())  # the module's shared server is running too
    with KubeTestServer() as srv:
        srv.seed_vms(8, run_strategy="Halted")
        client = api_client(srv)
        vms = DynamicClient(client).resources.get(
            api_version="kubevirt.io/v1", kind="VirtualMachine"
        )
        start_rv = srv.core.store.resource_version

        def work(index: int) -> list[int]:
            rvs = []
            for step in range(25):
                got = vms.patch(
                    name=f"vm-{index}",
                    namespace="default",
                    body={"metadata": {"labels": {"step": str(step)}}},
                    content_type="application/merge-patch+json",
                )
                rvs.append(int(got.metadata.resourceVersion))
            return rvs

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(work, range(8)))
        every_rv = [rv for rvs in results for rv in rvs]
        assert len(set(every_rv)) == 200 and srv.core.store.resource_version == start_rv + 200
        assert all(rvs == sorted(rvs) for rvs in results)
        assert set(_server_threads()) - before  # keep-alive connections are being served
        client.close()
    assert set(_server_threads()) - before == set()


# --------------------------------------------------------------------------- performance


def test_five_thousand_vms(capsys):
    with KubeTestServer() as srv:
        started = time.perf_counter()
        srv.seed_vms(5000, labels={"fleet": "a", "batch": "b{i}"})
        seeded = time.perf_counter() - started
        vms = DynamicClient(api_client(srv)).resources.get(
            api_version="kubevirt.io/v1", kind="VirtualMachine"
        )
        started = time.perf_counter()
        token, count, pages = None, 0, 0
        while True:
            page = vms.get(
                namespace="default", limit=500, _continue=token, label_selector="fleet=a"
            )
            count += len(page.items)
            pages += 1
            token = page.metadata["continue"]
            if not token:
                break
        listed = time.perf_counter() - started
        started = time.perf_counter()
        token, raw_count = "", 0
        while True:
            suffix = f"&continue={token}" if token else ""
            status, _unused, doc = raw_request(srv, "GET", f"{VM_PATH}?limit=500{suffix}")
            assert status == 200
            raw_count += len(doc["items"])
            token = doc["metadata"].get("continue")
            if not token:
                break
        raw_listed = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(200):
            vms.patch(
                name=f"vm-{i}",
                namespace="default",
                body={"spec": {"template": {"spec": {"readinessProbe": {"guestAgentPing": {}}}}}},
                content_type="application/merge-patch+json",
            )
        per_patch = (time.perf_counter() - started) / 200
        with capsys.disabled():
            print(
                f"\n[kube-test-server] seed 5000 VMs (+VMIs): {seeded:.2f} s; LIST 5000 in pages of 500 "
                f"via DynamicClient: {listed:.2f} s, via raw HTTP: {raw_listed:.2f} s; "
                f"VM merge patch round trip: {per_patch * 1000:.1f} ms"
            )
        assert count == raw_count == 5000 and pages == 10
        assert listed < 30 and raw_listed < 15
