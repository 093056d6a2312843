"""End to end: a crashed VM's series -> Prometheus -> Alertmanager -> webhook, with the real tools.

Debian's `prometheus` and `prometheus-alertmanager` run on loopback with ports picked by the
test and temporary directories, independent of any packaged service that may run on the default
ports (9090/9093). The alerting_rule module (through ansible-playbook, target=file, reload=true)
writes the rule file with the pack's VirtualMachinePodNotReady expression and a short `for`, and
makes the running Prometheus reload it. A tiny exporter in the test serves the series
kube-state-metrics would show for a virt-launcher pod; a webhook receiver in the test records
what Alertmanager delivers. Every wait is bounded; every process is killed on exit.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting import pack

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

POD = {"namespace": "vms", "pod": "virt-launcher-win2022-xcqrf"}
FOR = "5s"
ALERT = "VirtualMachinePodNotReady"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what, check, timeout, interval=0.2):
    """Poll check() until it returns a truthy value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError as exc:  # not listening yet
            value, last = None, exc
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        "timed out after {0}s waiting for {1} (last error: {2})".format(timeout, what, last)
    )


def http_json(url, data=None):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read() or b"{}")


class Exporter:
    """Serves the kube-state-metrics series of one virt-launcher pod; `ready` flips the compute container."""

    def __init__(self):
        self.ready = 1
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                labels = 'namespace="{namespace}",pod="{pod}"'.format(**POD)
                body = (
                    "# TYPE kube_pod_container_status_ready gauge\n"
                    'kube_pod_container_status_ready{{{0},container="compute",uid="u1"}} {1}\n'
                    'kube_pod_container_status_ready{{{0},container="guest-console-log",uid="u1"}} 1\n'
                    "# TYPE kube_pod_status_phase gauge\n"
                    'kube_pod_status_phase{{{0},phase="Pending",uid="u1"}} 0\n'
                    'kube_pod_status_phase{{{0},phase="Running",uid="u1"}} 1\n'
                    "# TYPE kube_pod_labels gauge\n"
                    'kube_pod_labels{{{0},label_vm_kubevirt_io_name="win2022",uid="u1"}} 1\n'
                ).format(labels, exporter.ready)
                payload = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Webhook:
    """Records Alertmanager's webhook notifications with their arrival time."""

    def __init__(self):
        self.notifications = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length))
                with hook.lock:
                    hook.notifications.append((time.monotonic(), payload))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, status):
        """First notification of our alert with that status: (time, alert)."""
        with self.lock:
            for when, payload in self.notifications:
                for alert in payload.get("alerts", []):
                    if alert["labels"].get("alertname") == ALERT and alert["status"] == status:
                        return when, alert
        return None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Processes:
    """Started processes; stop() terminates each (then kills it) and reports their logs."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.procs = []

    def start(self, name, argv):
        log = open(self.logdir / (name + ".log"), "wb")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc, log))
        return proc

    def logs(self):
        return "\n".join(
            "--- {0} ---\n{1}".format(name, (self.logdir / (name + ".log")).read_text()[-3000:])
            for name, _p, _l in self.procs
        )

    def stop(self):
        for _name, proc, _log in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _name, proc, log in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            log.close()


def run_module(args, workdir):
    """Run vmhealth.kvm.alerting_rule once through ansible-playbook; return its result."""
    import ansible_collections.kubernetes.core as kc

    site = Path(list(kc.__path__)[0]).resolve().parents[2]
    playbook = workdir / "write-rules.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "tasks": [
                        {"vmhealth.kvm.alerting_rule": args, "register": "result"},
                        {
                            "ansible.builtin.copy": {
                                "content": "{{ result | to_json }}",
                                "dest": str(workdir / "result.json"),
                                "mode": "0644",
                            }
                        },
                    ],
                }
            ]
        )
    )
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": "{0}:{1}".format(REPO / "build" / "collections", site),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "PATH": "{0}:{1}".format(VENV_BIN, env.get("PATH", "")),
        }
    )
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), str(playbook)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    return json.loads((workdir / "result.json").read_text())


@pytest.fixture
def stack(tmp_path):
    assert PROMETHEUS and ALERTMANAGER, (
        "prometheus and prometheus-alertmanager are required (Debian packages, `make apt`)"
    )
    exporter, webhook = Exporter(), Webhook()
    processes = Processes(tmp_path)
    ports = {"prometheus": free_port(), "alertmanager": free_port()}
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (tmp_path / "alertmanager.yml").write_text(
        json.dumps(
            {
                "route": {
                    "receiver": "test",
                    "group_by": ["alertname", "namespace", "vm"],
                    "group_wait": "1s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "test",
                        "webhook_configs": [
                            {
                                "url": "http://127.0.0.1:{0}/hook".format(webhook.port),
                                "send_resolved": True,
                            }
                        ],
                    }
                ],
            }
        )
    )
    (tmp_path / "prometheus.yml").write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules_dir / "*.yml")],
                "alerting": {
                    "alertmanagers": [
                        {
                            "static_configs": [
                                {"targets": ["127.0.0.1:{0}".format(ports["alertmanager"])]}
                            ]
                        }
                    ]
                },
                "scrape_configs": [
                    {
                        "job_name": "kube-state-metrics",
                        "static_configs": [{"targets": ["127.0.0.1:{0}".format(exporter.port)]}],
                    }
                ],
            }
        )
    )
    try:
        processes.start(
            "alertmanager",
            [
                ALERTMANAGER,
                "--config.file={0}".format(tmp_path / "alertmanager.yml"),
                "--storage.path={0}".format(tmp_path / "am-data"),
                "--web.listen-address=127.0.0.1:{0}".format(ports["alertmanager"]),
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
        )
        processes.start(
            "prometheus",
            [
                PROMETHEUS,
                "--config.file={0}".format(tmp_path / "prometheus.yml"),
                "--storage.tsdb.path={0}".format(tmp_path / "prom-data"),
                "--web.listen-address=127.0.0.1:{0}".format(ports["prometheus"]),
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
        )
        yield {
            "tmp": tmp_path,
            "rules_dir": rules_dir,
            "ports": ports,
            "exporter": exporter,
            "webhook": webhook,
            "processes": processes,
        }
    finally:
        processes.stop()
        exporter.stop()
        webhook.stop()


def test_crashed_vm_alert_reaches_the_webhook_and_resolves(stack):
    prom = "http://127.0.0.1:{0}".format(stack["ports"]["prometheus"])
    am = "http://127.0.0.1:{0}".format(stack["ports"]["alertmanager"])
    exporter, webhook, processes = stack["exporter"], stack["webhook"], stack["processes"]
    try:
        wait_for(
            "Alertmanager ready",
            lambda: urllib.request.urlopen(am + "/-/ready", timeout=2).status == 200,
            30,
        )
        wait_for(
            "Prometheus ready",
            lambda: urllib.request.urlopen(prom + "/-/ready", timeout=2).status == 200,
            30,
        )
        wait_for(
            "the exporter scraped",
            lambda: http_json(prom + "/api/v1/query?query=kube_pod_container_status_ready")["data"][
                "result"
            ],
            30,
        )

        # The module writes the rule file (the pack's expression, a short `for`) and reloads Prometheus.
        result = run_module(
            {
                "target": "file",
                "path": str(stack["rules_dir"] / "vm-health.yml"),
                "rules": [ALERT],
                "group_interval": "1s",
                "rule_overrides": {ALERT: {"for": FOR}},
                "reload": True,
                "reload_url": prom + "/-/reload",
            },
            stack["tmp"],
        )
        assert result["changed"] and result["reloaded"] and result["checked_with"] == "promtool"

        def loaded_rule():
            groups = http_json(prom + "/api/v1/rules")["data"]["groups"]
            return [r for g in groups for r in g["rules"] if r["name"] == ALERT]

        rule = wait_for("Prometheus to load the rule", loaded_rule, 20)[0]
        # the pack's expression as shipped (Prometheus normalises whitespace and drops comments)
        assert 'kube_pod_status_phase{phase="Running"}' in rule["query"]
        assert "label_vm_kubevirt_io_name" in rule["query"]
        assert rule["duration"] == 5
        # Healthy VM: evaluated, nothing pending or firing.
        time.sleep(2)
        assert loaded_rule()[0]["state"] == "inactive"
        assert webhook.find("firing") is None

        # The guest crashes: the compute container turns not ready while the pod keeps Running.
        exporter.ready = 0
        flipped = time.monotonic()
        fired_at, alert = wait_for("the firing notification", lambda: webhook.find("firing"), 60)
        latency = fired_at - flipped
        print("\nE2E: pod not ready -> webhook delivery: {0:.2f} s (for: {1})".format(latency, FOR))
        assert latency >= 5.0, "fired before its `for`"
        assert latency < 30.0
        assert alert["labels"] == {
            "alertname": ALERT,
            "severity": "warning",
            "namespace": POD["namespace"],
            "pod": POD["pod"],
            "container": "compute",
            "vm": "win2022",
            "uid": "u1",
            "job": "kube-state-metrics",
            "instance": "127.0.0.1:{0}".format(exporter.port),
        }
        assert alert["annotations"]["runbook_url"] == "{0}/{1}.md".format(
            pack.DEFAULT_RUNBOOK_BASE_URL, ALERT
        )
        assert alert["annotations"]["summary"] == "VM vms/win2022 is running but not ready"

        # The guest recovers: Alertmanager sends the resolved notification.
        exporter.ready = 1
        recovered = time.monotonic()
        resolved_at, resolved = wait_for(
            "the resolved notification", lambda: webhook.find("resolved"), 60
        )
        print(
            "E2E: pod ready again -> resolved delivery: {0:.2f} s".format(resolved_at - recovered)
        )
        assert resolved["labels"]["vm"] == "win2022"
    except AssertionError:
        print(processes.logs())
        raise
