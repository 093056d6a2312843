"""Integration tests: integration targets run through ansible-playbook.

By default the targets talk to the Kubernetes API *test double* (tests/kube_test_server),
started once per session and reset before each test. Set VMHEALTH_TEST_KUBECONFIG to the
kubeconfig of a real cluster (kind + KubeVirt, OpenShift) to run the same targets against
it; the checks that need the test double (request log, fault injection) are then skipped by
the targets themselves.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TARGETS = REPO / "tests" / "integration" / "targets"
PLAYBOOK = REPO / "tests" / "integration" / "run_target.yml"
VENV_BIN = Path(sys.executable).parent


def _site_packages():
    import ansible_collections.kubernetes.core as kc

    return str(Path(kc.__file__ if kc.__file__ else list(kc.__path__)[0]).resolve().parents[3])


class Cluster:
    """Where the targets run: the test double (``server`` set) or a real cluster."""

    def __init__(self, kubeconfig, server=None, workdir=None):
        self.kubeconfig = str(kubeconfig)
        self.server = server
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="vmhealth-it-"))
        self.ca_file = None
        if server is not None:
            self.ca_file = self.workdir / "ca.pem"
            config = yaml.safe_load(Path(self.kubeconfig).read_text())
            ca_data = config["clusters"][0]["cluster"].get("certificate-authority-data")
            if ca_data:
                self.ca_file.write_bytes(base64.b64decode(ca_data))
            else:
                self.ca_file = None
            self.token = config["users"][0]["user"]["token"]

    @property
    def double(self):
        return self.server is not None

    def extra_vars(self):
        if not self.double:
            return {"vmhealth_test_double": False}
        extra = {
            "vmhealth_test_double": True,
            "vmhealth_test_api": self.server.url,
            "vmhealth_test_token": self.token,
        }
        if self.ca_file:
            extra["vmhealth_test_ca"] = str(self.ca_file)
        return extra

    def env(self):
        env = dict(os.environ)
        env.update(
            {
                "ANSIBLE_COLLECTIONS_PATH": "{0}:{1}".format(
                    REPO / "build" / "collections", _site_packages()
                ),
                "ANSIBLE_ROLES_PATH": str(TARGETS),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_LOCAL_TEMP": str(self.workdir / "tmp"),
                "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
                "K8S_AUTH_KUBECONFIG": self.kubeconfig,
                "PATH": "{0}:{1}".format(VENV_BIN, env.get("PATH", "")),
            }
        )
        return env

    def run_target(self, target, **extra_vars):
        """Run a target with ansible-playbook; return the CompletedProcess (output captured)."""
        variables = self.extra_vars()
        variables["vmhealth_target"] = target
        variables.update(extra_vars)
        return subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), str(PLAYBOOK), "-e", json.dumps(variables)],
            env=self.env(),
            cwd=str(REPO),
            capture_output=True,
            check=False,
            text=True,
            timeout=900,
        )


def assert_ok(proc):
    """Fail with the playbook's output when it did not pass."""
    assert proc.returncode == 0, "ansible-playbook failed (rc={0})\n{1}\n{2}".format(
        proc.returncode, proc.stdout[-20000:], proc.stderr[-5000:]
    )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    real = os.environ.get("VMHEALTH_TEST_KUBECONFIG")
    if real:
        yield Cluster(real)
        return
    from kube_test_server import KubeTestServer

    workdir = tmp_path_factory.mktemp("kube")
    server = KubeTestServer()
    server.start()
    try:
        yield Cluster(server.kubeconfig_path, server=server, workdir=workdir)
    finally:
        server.stop()


@pytest.fixture
def fresh_cluster(cluster):
    """The cluster with the test double reset (no objects, empty log, no faults)."""
    if cluster.double:
        cluster.server.reset()
    return cluster
