"""HTTP(S) front end of the test double and the public :class:`KubeTestServer` class."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import errors
from .api import ApiCore, ApiRequest
from .errors import ApiError
from .faults import FaultInjector, RequestLog
from .kubevirt import Readiness
from .resources import BY_KIND, VIRTUAL_MACHINES, ResourceType
from .schema import SchemaSet
from .store import dumps, new_uid, now_rfc3339
from .tls import generate_certificates, write_kubeconfig

LOG = logging.getLogger("kube_test_server")
ALLOWED_HOSTS = ("127.0.0.1", "localhost")

DEFAULT_VM_TEMPLATE_SPEC: dict[str, Any] = {
    "domain": {
        "devices": {"disks": [{"name": "rootdisk", "disk": {"bus": "virtio"}}]},
        "resources": {"requests": {"memory": "128Mi"}},
    },
    "volumes": [{"name": "rootdisk", "containerDisk": {"image": "localhost/test/disk:latest"}}],
}


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections and worker threads so stop() leaks nothing."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], owner: KubeTestServer, context: ssl.SSLContext | None
    ) -> None:
        self.owner = owner
        self._track_lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.workers: set[threading.Thread] = set()
        super().__init__(address, _Handler)
        if context is not None:
            # handshake in the worker thread, not in the accept loop
            self.socket = context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(
            target=self._work,
            args=(request, client_address),
            daemon=True,
            name="kube-test-server-conn",
        )
        with self._track_lock:
            self.workers.add(worker)
            self.connections.add(request)
        worker.start()

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._track_lock:
                self.workers.discard(threading.current_thread())
                self.connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients that go away or fail the TLS handshake are normal in tests
        exc = traceback.format_exc()
        if (
            "ConnectionResetError" in exc
            or "BrokenPipeError" in exc
            or "SSL" in exc
            or "TimeoutError" in exc
        ):
            LOG.debug("connection error from %s: %s", client_address, exc)
        else:
            LOG.error("error serving %s: %s", client_address, exc)

    def close_connections(self) -> None:
        with self._track_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def join_workers(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._track_lock:
                workers = list(self.workers)
            if not workers:
                return True
            self.close_connections()
            for worker in workers:
                worker.join(0.05)
        return not self.workers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3 connection pools expect
    server_version = "kube-test-server"
    sys_version = ""
    timeout = 120  # idle keep-alive connections; stop() closes them anyway
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # small header and body writes must not wait for delayed ACKs (Nagle: +40 ms per request)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if payload and "Content-Type" not in headers:
            self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(payload)))
        body = payload if self.command != "HEAD" else b""
        # one write for status line, headers and body (one TLS record, one segment for small replies)
        self._headers_buffer.append(b"\r\n" + body)  # type: ignore[attr-defined]
        self.flush_headers()

    @staticmethod
    def _status(err: ApiError) -> tuple[int, bytes, dict[str, str]]:
        return err.code, dumps(err.status()), {"Content-Type": "application/json", **err.headers}

    def _drop(self) -> None:
        """Close the connection without any response (a 'drop' fault)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _dispatch(self) -> None:
        owner = self.server.owner
        started, t0 = time.time(), time.perf_counter()
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = parse_qs(split.query, keep_blank_values=True)
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(*self._status(errors.bad_request("invalid request body framing")))
            return
        if path == "/_test" or path.startswith("/_test/"):
            status, payload = owner._admin(self.command, path, query, body)
            self._send(status, dumps(payload), {"Content-Type": "application/json"})
            return
        req = ApiRequest(self.command, path, query, self.headers.get("Content-Type", ""), body)
        info = owner.core.classify(req)
        fault_type = None
        if not owner._authorized(self.headers.get("Authorization")):
            status, payload, headers = self._status(errors.unauthorized())
        else:
            if owner.latency > 0:
                time.sleep(owner.latency)
            fault = owner.faults.take(self.command, path, info.discovery)
            fault_type = fault.type if fault else None
            if fault is not None and fault.type == "drop":
                owner._log_request(req, info, started, t0, 0, fault_type)
                self._drop()
                return
            if fault is not None and fault.type == "latency":
                time.sleep(fault.latency)
            if fault is not None and fault.type not in ("latency", "drop"):
                if fault.concurrent_patch is not None:
                    owner.core.concurrent_patch(info.target, fault.concurrent_patch)
                status, payload, headers = self._status(
                    fault.error(info.resource, info.group, info.name or "")
                )
            else:
                try:
                    status, payload, headers = owner.core.handle(req, info)
                except ApiError as err:
                    status, payload, headers = self._status(err)
                except Exception as exc:  # a bug in the test double: answer 500, keep serving
                    LOG.exception("internal error handling %s %s", self.command, self.path)
                    status, payload, headers = self._status(errors.internal(repr(exc)))
        owner._log_request(req, info, started, t0, status, fault_type)
        self._send(status, payload, headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class KubeTestServer:
    """A strict Kubernetes + KubeVirt API **test double** served over HTTPS on 127.0.0.1.

    Use as a context manager or call :meth:`start` / :meth:`stop`. Clients connect with the
    kubeconfig at :attr:`kubeconfig_path` (TLS verification on, bearer token auth).
    """

    def __init__(
        self,
        crd_dir: str | os.PathLike[str] | None = None,
        latency: float = 0.0,
        tls: bool = True,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        kubeconfig_path: str | os.PathLike[str] | None = None,
        fallback_schemas: bool = False,
        validate_template_objects: bool = True,
        webhooks: bool = True,
        vmi_ready: Readiness = True,
    ) -> None:
        if host not in ALLOWED_HOSTS:
            raise ValueError("the test server only listens on 127.0.0.1 / localhost")
        self.host, self.port, self.tls = "127.0.0.1", port, tls
        self.schemas = SchemaSet(crd_dir, fallback_only=fallback_schemas)
        self.core = ApiCore(
            self.schemas, validate_template_objects=validate_template_objects, webhooks=webhooks
        )
        self.core.kubevirt.default_ready = vmi_ready
        self.faults = FaultInjector()
        self.log = RequestLog()
        self.latency = float(latency)
        self.token = token or secrets.token_urlsafe(24)
        self._kubeconfig_arg = Path(kubeconfig_path) if kubeconfig_path else None
        self.kubeconfig_path: Path | None = None
        self.ca_path: Path | None = None
        self.workdir: Path | None = None
        self.url = ""
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> KubeTestServer:
        if self._httpd is not None:
            return self
        self.workdir = Path(tempfile.mkdtemp(prefix="kube-test-server-"))
        context = None
        if self.tls:
            ca, cert, key = generate_certificates(self.workdir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.ca_path = ca
        self._httpd = _HTTPServer((self.host, self.port), self, context)
        self.port = self._httpd.server_address[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self.core.server_address = f"127.0.0.1:{self.port}"
        self.kubeconfig_path = self._kubeconfig_arg or self.workdir / "kubeconfig"
        write_kubeconfig(self.kubeconfig_path, self.url, self.token, self.ca_path)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="kube-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close keep-alive connections and join every thread."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
        httpd.close_connections()
        if not httpd.join_workers(timeout=10):
            LOG.warning("kube-test-server: some connection threads did not stop")
        httpd.server_close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> KubeTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def schema_sources(self) -> dict[str, str]:
        """CRD name -> 'crd' (real schema from the CRD directory) or 'fallback' (our own)."""
        return dict(self.schemas.sources)

    def _authorized(self, header: str | None) -> bool:
        return header is not None and secrets.compare_digest(header, f"Bearer {self.token}")

    # ---------------------------------------------------------------- request log
    def _log_request(
        self, req: ApiRequest, info: Any, started: float, t0: float, status: int, fault: str | None
    ):
        self.log.append(
            {
                "time": started,
                "method": req.method,
                "path": req.path,
                "query": {k: v[0] if len(v) == 1 else v for k, v in req.query.items()},
                "content_type": req.content_type,
                "dry_run": info.dry_run,
                "status": status,
                "duration": time.perf_counter() - t0,
                "discovery": info.discovery,
                "verb": info.verb,
                "resource": info.resource,
                "group": info.group,
                "namespace": info.namespace,
                "name": info.name,
                "subresource": info.subresource,
                "fault": fault,
            }
        )

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Logged API requests with seq > since (discovery ones have ``discovery: True``)."""
        return self.log.since(since)

    def clear_requests(self) -> None:
        self.log.clear()

    def mark(self) -> int:
        """The current last sequence number; pass it as ``since`` later."""
        return self.log.last_seq

    def count_requests(self, since: int = 0, **filters: Any) -> int:
        """Count logged requests, e.g. ``count_requests(mark, verb="patch", resource="virtualmachines")``."""
        return self.log.count(since, **filters)

    def writes(self, since: int = 0) -> int:
        """Non-dry-run POST/PUT/PATCH/DELETE requests after ``since`` (whatever their status)."""
        return self.log.count(since, writes=True)

    # ---------------------------------------------------------------- faults/config
    def add_fault(
        self,
        type: str,
        count: int = 1,
        method: str | None = None,
        path_regex: str | None = None,
        status: int | None = None,
        latency: float | None = None,
        retry_after: int | None = None,
        discovery: bool = False,
        concurrent_patch: dict[str, Any] | None = None,
    ) -> int:
        """Inject a fault into the next ``count`` matching API requests; returns its id.

        ``concurrent_patch`` (conflict only): a merge patch applied to the addressed object just
        before the 409, as if another client had written it in between.
        """
        spec = {
            "concurrent_patch": concurrent_patch,
            "type": type,
            "count": count,
            "status": status,
            "latency": latency,
            "retry_after": retry_after,
            "match": {"method": method, "path_regex": path_regex, "discovery": discovery},
        }
        return self.faults.add(spec).id

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_latency(self, seconds: float) -> None:
        """Sleep this long before every API request (e.g. 0.002 for benchmarks)."""
        self.latency = float(seconds)

    def set_vmi_ready_default(self, ready: Readiness) -> None:
        """Readiness of VMIs created from now on: True, False (never) or seconds until Ready."""
        self.core.kubevirt.default_ready = ready

    def reset(self) -> None:
        """Remove all objects (default namespaces come back), the request log and faults."""
        self.core.reset()
        self.log.clear()
        self.faults.clear()

    # ---------------------------------------------------------------- objects
    def _resource(self, api_version: str, kind: str) -> ResourceType:
        res = BY_KIND.get((api_version, kind))
        if res is None:
            raise ValueError(f"kind {kind} in {api_version} is not served by the test server")
        return res

    def seed(self, obj: dict[str, Any], create_namespace: bool = True) -> dict[str, Any]:
        """Create an object through normal validation, without logging; returns the stored object.

        The namespace is created first when missing (``create_namespace``).
        """
        res = self._resource(obj.get("apiVersion", ""), obj.get("kind", ""))
        namespace = (obj.get("metadata") or {}).get("namespace") if res.namespaced else None
        with self.core.store.lock:
            if res.namespaced:
                namespace = namespace or "default"
                if create_namespace:
                    self.core.ensure_namespace(namespace)
            _unused, created = self.core.create(res, namespace, obj, {})
        return created

    def get_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        res = self._resource(api_version, kind)
        return self.core.get_object(res, namespace if res.namespaced else None, name)

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        res = self._resource(api_version, kind)
        with self.core.store.lock:
            self.core.kubevirt.tick()
            keys = self.core.store.keys_after(res, None, namespace if res.namespaced else None)
            return [copy.deepcopy(self.core.store.bucket(res)[k].obj) for k in keys]

    def seed_vms(
        self,
        n: int,
        namespace: str = "default",
        name_prefix: str = "vm-",
        labels: dict[str, str] | None = None,
        run_strategy: str = "Always",
        template_spec: dict[str, Any] | None = None,
        template_labels: dict[str, str] | None = None,
        start_index: int = 0,
    ) -> list[str]:
        """Create ``n`` VirtualMachines fast (validated once, then cloned); returns their names.

        Label values may contain ``{i}`` (the VM's index). VMs that run get a VMI like any other.
        """
        base = {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {
                "name": f"{name_prefix}{start_index}",
                "namespace": namespace,
                "labels": {},
            },
            "spec": {
                "runStrategy": run_strategy,
                "template": {
                    "metadata": {"labels": dict(template_labels or {})},
                    "spec": copy.deepcopy(template_spec or DEFAULT_VM_TEMPLATE_SPEC),
                },
            },
        }
        labels = labels or {}
        names = []
        core = self.core
        with core.store.lock:
            core.ensure_namespace(namespace)
            probe = copy.deepcopy(base)
            probe["metadata"]["labels"] = {k: v.format(i=start_index) for k, v in labels.items()}
            core._admit(VIRTUAL_MACHINES, probe)  # validate once: all clones share the spec
            base["spec"] = probe["spec"]
            for i in range(start_index, start_index + n):
                vm = {
                    "apiVersion": base["apiVersion"],
                    "kind": base["kind"],
                    "spec": copy.deepcopy(base["spec"]),
                }
                name = f"{name_prefix}{i}"
                vm["metadata"] = {
                    "name": name,
                    "namespace": namespace,
                    "labels": {k: v.format(i=i) for k, v in labels.items()},
                    "uid": new_uid(),
                    "creationTimestamp": now_rfc3339(),
                    "generation": 1,
                }
                if core.store.get(VIRTUAL_MACHINES, namespace, name) is not None:
                    raise errors.already_exists("virtualmachines", "kubevirt.io", name)
                errs = core._metadata_errors(VIRTUAL_MACHINES, vm)
                if errs:
                    raise errors.invalid("VirtualMachine", "kubevirt.io", name, errs)
                core.kubevirt.reconcile(vm, created=True)
                vm["metadata"]["resourceVersion"] = core.store.next_rv()
                core.store.put(VIRTUAL_MACHINES, vm)
                names.append(name)
        return names

    # ---------------------------------------------------------------- KubeVirt controls
    def set_vmi_status(
        self,
        namespace: str,
        name: str,
        ready: bool | None = None,
        agent_connected: bool | None = None,
        phase: str | None = None,
        conditions: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Set a VMI's Ready / AgentConnected conditions or phase; the VM status follows."""
        with self.core.store.lock:
            return self.core.kubevirt.set_vmi_status(
                namespace, name, ready, agent_connected, phase, conditions
            )

    def set_vm_behaviour(
        self,
        namespace: str,
        name: str,
        ready_after_restart: Readiness = True,
        agent_connected_after_restart: bool | None = None,
    ) -> None:
        """How VMIs created for this VM from now on (restart/start/recreate) behave.

        ``ready_after_restart``: True (Ready at once), False (never Ready) or seconds until Ready.
        """
        with self.core.store.lock:
            self.core.kubevirt.set_behaviour(
                namespace, name, ready_after_restart, agent_connected_after_restart
            )

    # ---------------------------------------------------------------- /_test/ HTTP
    def _admin(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        """The /_test/ endpoints (no authentication, not logged)."""
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return 400, {"error": "body is not JSON"}
        route = path[len("/_test") :].rstrip("/") or "/"
        q = {k: v[-1] for k, v in query.items()}
        try:
            return self._admin_route(method, route, q, data)
        except ApiError as err:
            return err.code, err.status()
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"error": str(exc)}

    def _admin_route(
        self, method: str, route: str, q: dict[str, str], data: Any
    ) -> tuple[int, Any]:
        if (method, route) == ("GET", "/health"):
            return 200, {"ok": True, "url": self.url}
        if (method, route) == ("GET", "/requests"):
            entries = self.requests(int(q.get("since", 0)))
            if "last" in q:
                entries = entries[-int(q["last"]) :] if int(q["last"]) > 0 else []
            return 200, {"requests": entries, "seq": self.mark()}
        if (method, route) == ("GET", "/requests/count"):
            since = int(q.pop("since", 0))
            filters: dict[str, Any] = {}
            for key, value in q.items():
                if key in ("dry_run", "discovery", "writes"):
                    filters[key] = value.lower() in ("1", "true", "yes")
                elif key == "status":
                    filters[key] = int(value)
                else:
                    filters[key] = value
            return 200, {
                "count": self.count_requests(since, **filters),
                "since": since,
                "seq": self.mark(),
            }
        if (method, route) == ("GET", "/requests/summary"):
            since = int(q.get("since", 0))
            return 200, {
                "by_verb": self.log.counts_by_verb(since),
                "writes": self.writes(since),
                "seq": self.mark(),
            }
        if (method, route) == ("GET", "/seq"):
            return 200, {"seq": self.mark()}
        if (method, route) == ("POST", "/requests/clear"):
            self.clear_requests()
            return 200, {}
        if (method, route) == ("POST", "/faults"):
            return 200, {"id": self.faults.add(data).id}
        if (method, route) == ("GET", "/faults"):
            return 200, self.faults.list()
        if (method, route) in (("DELETE", "/faults"), ("POST", "/faults/clear")):
            self.clear_faults()
            return 200, {}
        if route == "/config":
            if method == "POST":
                if "latency" in data:
                    self.set_latency(float(data["latency"]))
                if "vmi_ready" in data:
                    self.set_vmi_ready_default(data["vmi_ready"])
                if "agent_connected" in data:
                    self.core.kubevirt.default_agent_connected = bool(data["agent_connected"])
            return 200, {
                "latency": self.latency,
                "vmi_ready": self.core.kubevirt.default_ready,
                "agent_connected": self.core.kubevirt.default_agent_connected,
            }
        if (method, route) == ("POST", "/objects"):
            items = data.get("items") if isinstance(data, dict) and "items" in data else data
            items = items if isinstance(items, list) else [items]
            return 200, {"items": [self.seed(obj) for obj in items]}
        if (method, route) == ("GET", "/objects"):
            obj = self.get_object(q["apiVersion"], q["kind"], q["name"], q.get("namespace"))
            if obj is None:
                return 404, {"error": "not found"}
            return 200, obj
        if (method, route) == ("POST", "/reset"):
            self.reset()
            return 200, {}
        if (method, route) == ("POST", "/vmi-status"):
            vmi = self.set_vmi_status(
                data["namespace"],
                data["name"],
                ready=data.get("ready"),
                agent_connected=data.get("agent_connected"),
                phase=data.get("phase"),
                conditions=data.get("conditions"),
            )
            return 200, vmi
        if (method, route) in (("POST", "/vm-behaviour"), ("POST", "/vm-behavior")):
            self.set_vm_behaviour(
                data["namespace"],
                data["name"],
                ready_after_restart=data.get("ready_after_restart", True),
                agent_connected_after_restart=data.get("agent_connected_after_restart"),
            )
            return 200, {}
        if (method, route) == ("POST", "/seed-vms"):
            names = self.seed_vms(
                int(data["count"]),
                namespace=data.get("namespace", "default"),
                name_prefix=data.get("name_prefix", "vm-"),
                labels=data.get("labels"),
                run_strategy=data.get("run_strategy", "Always"),
                template_spec=data.get("template_spec"),
                template_labels=data.get("template_labels"),
                start_index=int(data.get("start_index", 0)),
            )
            return 200, {"created": len(names), "first": names[0] if names else None}
        if (method, route) == ("GET", "/schemas"):
            return 200, self.schema_sources
        if (method, route) == ("POST", "/namespaces"):
            self.core.ensure_namespace(data["name"])
            return 200, self.get_object("v1", "Namespace", data["name"])
        return 404, {"error": f"no test endpoint {method} /_test{route}"}


__all__ = ["KubeTestServer"]
