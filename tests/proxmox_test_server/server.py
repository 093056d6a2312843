"""HTTPS front of the Proxmox VE API test double: routing, authentication, faults, request log."""

from __future__ import annotations

import json
import re
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from .cluster import PARAM_FAILED, ApiError, Cluster

API = "/api2/json"
_TOKEN = re.compile(
    r"^PVEAPIToken=(?P<user>[^!\s]+@[^!\s]+)!(?P<token>[A-Za-z][A-Za-z0-9._-]*)=(?P<secret>\S+)$"
)
ROUTES = [
    ("GET", re.compile(r"^/cluster/resources$"), "resources"),
    ("GET", re.compile(r"^/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>[^/]+)/config$"), "get_config"),
    ("PUT", re.compile(r"^/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>[^/]+)/config$"), "put_config"),
    ("POST", re.compile(r"^/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>[^/]+)/config$"), "post_config"),
    ("GET", re.compile(r"^/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>[^/]+)/pending$"), "pending"),
    ("GET", re.compile(r"^/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>[^/]+)/status/current$"), "status"),
    ("POST", re.compile(r"^/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>[^/]+)/status/reboot$"), "reboot"),
    ("GET", re.compile(r"^/nodes/(?P<node>[^/]+)/tasks/(?P<upid>[^/]+)/status$"), "task"),
]
#: Query/body parameters each handler accepts (besides path parameters); others get 400.
ALLOWED_PARAMS = {
    "resources": {"type"},
    "get_config": {"current", "snapshot"},
    "pending": set(),
    "status": set(),
    "reboot": {"timeout"},
    "task": set(),
}


class ProxmoxTestServer:
    """A strict Proxmox VE API test double on https://127.0.0.1:<port> (see tests/README.md).

    ``tokens`` maps ``user@realm!tokenid`` to its secret; ``users`` maps ``user@realm`` to a
    password (ticket authentication with CSRF token on writes).
    """

    def __init__(self, tokens=None, users=None, nodes=("pve1", "pve2"), tls=True, workdir=None):
        self.cluster = Cluster(nodes)
        self.tokens = dict(tokens or {"root@pam!vmhealth": str(uuid.uuid4())})
        self.users = dict(users or {"root@pam": "test-password"})
        self.tickets: dict[str, tuple[str, str]] = {}
        self.log: list[dict] = []
        self.faults: list[dict] = []
        self._seq = 0
        self.tls = tls
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="pve-test-"))
        self.ca_path = None
        self._httpd = None
        self._thread = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> ProxmoxTestServer:
        handler = type("Handler", (_Handler,), {"double": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        if self.tls:
            from kube_test_server.tls import generate_certificates

            ca, cert, key = generate_certificates(self.workdir / "tls")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert), str(key))
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            self.ca_path = ca
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return "{0}://127.0.0.1:{1}".format("https" if self.tls else "http", self.port)

    def reset(self) -> None:
        with self.cluster.lock:
            self.cluster.reset()
            self.log.clear()
            self.faults.clear()
            self.tickets.clear()

    # -- request log ---------------------------------------------------------------------

    def requests(self, since: int = 0) -> list[dict]:
        with self.cluster.lock:
            return [dict(r) for r in self.log if r["seq"] > since]

    def mark(self) -> int:
        with self.cluster.lock:
            return self._seq

    def writes(self, since: int = 0) -> list[dict]:
        return [
            r
            for r in self.requests(since)
            if r["method"] in ("POST", "PUT", "DELETE") and r["path"] != "/access/ticket"
        ]

    def add_fault(self, fault: dict) -> None:
        """``{type: error|concurrent, count, match: {method, path_regex}, status, message, set}``."""
        with self.cluster.lock:
            self.faults.append(dict(fault, remaining=int(fault.get("count", 1))))

    # -- dispatch ------------------------------------------------------------------------

    def _record(self, method, path, params, auth):
        with self.cluster.lock:
            self._seq += 1
            safe = {k: ("<hidden>" if k == "password" else v) for k, v in params.items()}
            self.log.append(
                {
                    "seq": self._seq,
                    "time": time.monotonic(),
                    "method": method,
                    "path": path,
                    "params": safe,
                    "auth": auth,
                }
            )

    def _fault(self, method, path):
        with self.cluster.lock:
            for fault in self.faults:
                match = fault.get("match") or {}
                if fault["remaining"] <= 0:
                    continue
                if match.get("method") and match["method"] != method:
                    continue
                if match.get("path_regex") and not re.search(match["path_regex"], path):
                    continue
                fault["remaining"] -= 1
                return fault
        return None

    def authenticate(self, headers, method) -> tuple[str, str]:
        header = headers.get("Authorization")
        if header:
            m = _TOKEN.match(header.strip())
            if not m:
                raise ApiError(401, "invalid authentication header")
            token_id = "{0}!{1}".format(m.group("user"), m.group("token"))
            if self.tokens.get(token_id) != m.group("secret"):
                raise ApiError(401, "invalid token value!")
            return "token", m.group("user")
        cookie = headers.get("Cookie") or ""
        ticket = None
        for part in cookie.split(";"):
            name, _sep, value = part.strip().partition("=")
            if name == "PVEAuthCookie":
                ticket = value
        if not ticket:
            raise ApiError(401, "No ticket")
        entry = self.tickets.get(ticket)
        if entry is None:
            raise ApiError(401, "invalid ticket")
        user, csrf = entry
        if method != "GET" and headers.get("CSRFPreventionToken") != csrf:
            raise ApiError(401, "Permission denied - invalid csrf token")
        return "ticket", user

    def login(self, params) -> dict:
        user, password = params.get("username"), params.get("password")
        if not user or self.users.get(user) != password:
            raise ApiError(401, "authentication failure")
        ticket = "PVE:{0}:{1}".format(user, secrets.token_hex(16))
        csrf = secrets.token_hex(16)
        self.tickets[ticket] = (user, csrf)
        return {"ticket": ticket, "CSRFPreventionToken": csrf, "username": user}

    def dispatch(self, method, path, params, headers):
        if path == "/access/ticket" and method == "POST":
            self._record(method, path, params, "none")
            return self.login(params)
        try:
            auth, user = self.authenticate(headers, method)
        except ApiError:
            self._record(method, path, params, "rejected")
            raise
        self._record(method, path, params, auth)
        fault = self._fault(method, path)
        with self.cluster.lock:
            if fault and fault.get("type") == "concurrent":
                vm = self.cluster.vms[int(fault["vmid"])]
                self.cluster.update_config(vm, dict(fault.get("set") or {}))
            elif fault:
                raise ApiError(
                    int(fault.get("status", 500)), fault.get("message", "injected fault")
                )
            for route_method, pattern, name in ROUTES:
                m = pattern.match(path)
                if not m:
                    continue
                if route_method != method:
                    continue
                return self._call(name, m.groupdict(), params, user)
            raise ApiError(501, f"Method '{method} {path}' not implemented")

    def _call(self, name, path_params, params, user):
        c = self.cluster
        if name in ALLOWED_PARAMS:
            unknown = {
                k: "property is not defined in schema and the schema does not allow "
                "additional properties"
                for k in params
                if k not in ALLOWED_PARAMS[name]
            }
            if unknown:
                raise ApiError(400, PARAM_FAILED, unknown)
        if name == "resources":
            return c.resources(params.get("type"))
        if name == "task":
            return c.task_status(path_params["node"], path_params["upid"])
        vm = c.vm(path_params["node"], path_params["vmid"])
        if name == "get_config":
            current = params.get("current", "0")
            if current not in ("0", "1"):
                raise ApiError(
                    400,
                    PARAM_FAILED,
                    {"current": f"type check ('boolean') failed - got '{current}'\n"},
                )
            return c.get_config(vm, current == "1")
        if name == "pending":
            return c.get_pending(vm)
        if name == "status":
            return c.status(vm)
        if name == "reboot":
            timeout = params.get("timeout")
            if timeout is not None and not str(timeout).isdigit():
                raise ApiError(
                    400,
                    PARAM_FAILED,
                    {"timeout": f"type check ('integer') failed - got '{timeout}'\n"},
                )
            return c.reboot(vm, user)
        if name == "put_config":
            c.update_config(vm, params)
            return None
        if name == "post_config":
            c.update_config(vm, params)
            return c.config_task(vm, user)
        raise ApiError(501, "not implemented")


class _Handler(BaseHTTPRequestHandler):
    double: ProxmoxTestServer
    protocol_version = "HTTP/1.1"
    _json_body: dict = {}

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status, body, message=None):
        data = json.dumps(body).encode()
        # PVE puts the error message into the HTTP status line.
        self.send_response(status, (message or "").replace("\n", " ").strip() or None)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _params(self, split):
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            raw = self.rfile.read(length).decode()
            ctype = self.headers.get("Content-Type") or ""
            if "json" in ctype:
                self._json_body = json.loads(raw or "{}")
                params.update({k: str(v) for k, v in self._json_body.items()})
            else:
                params.update(dict(parse_qsl(raw, keep_blank_values=True)))
        return params

    def _handle(self, method):
        split = urlsplit(self.path)
        params = self._params(split)
        if split.path.startswith("/_test/"):
            return self._control(method, split.path, params)
        if not split.path.startswith(API + "/"):
            return self._send(404, {"data": None}, "Not Found")
        path = split.path[len(API) :]
        try:
            data = self.double.dispatch(method, path, params, self.headers)
        except ApiError as exc:
            body = {"data": None}
            if exc.errors is not None:
                body["errors"] = exc.errors
            return self._send(exc.status, body, exc.message)
        return self._send(200, {"data": data})

    def _control(self, method, path, params):
        d = self.double
        if path == "/_test/requests":
            return self._send(200, {"requests": d.requests(int(params.get("since", 0)))})
        if path == "/_test/faults" and method == "POST":
            d.add_fault(self._json_body)
            return self._send(200, {})
        if path == "/_test/reset" and method == "POST":
            d.reset()
            return self._send(200, {})
        return self._send(404, {}, "Not Found")

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")
