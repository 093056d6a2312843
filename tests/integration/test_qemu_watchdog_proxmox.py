"""qemu_watchdog on Proxmox VE: the integration target through ansible-playbook.

By default against the Proxmox VE API test double (tests/proxmox_test_server). With
VMHEALTH_TEST_PROXMOX_HOST, VMHEALTH_TEST_PROXMOX_USER (user@realm), VMHEALTH_TEST_PROXMOX_TOKEN_ID,
VMHEALTH_TEST_PROXMOX_TOKEN_SECRET and VMHEALTH_TEST_PROXMOX_VM (the name of a running test VM
without watchdog, which gets rebooted twice) the cycle runs against that real host instead
(VMHEALTH_TEST_PROXMOX_CA: CA bundle, when its certificate is not publicly trusted).
"""

import os

import pytest

from .conftest import Cluster, assert_ok

SCENARIOS = ["cycle", "stopped", "refusals", "faults", "invalid"]
TOKEN_ID = "vmhealth"


class PveRunner(Cluster):
    """Runs the target with the Proxmox connection variables (no Kubernetes involved)."""

    def __init__(self, server=None, ca=None, workdir=None):
        super().__init__("/nonexistent-kubeconfig", server=None, workdir=workdir)
        self.pve = server
        self.ca = ca

    def env(self):
        env = super().env()
        if self.ca:
            env["REQUESTS_CA_BUNDLE"] = str(self.ca)
        return env


@pytest.fixture(scope="module")
def pve_server(tmp_path_factory):
    from proxmox_test_server import ProxmoxTestServer

    server = ProxmoxTestServer(workdir=tmp_path_factory.mktemp("pve")).start()
    try:
        yield server
    finally:
        server.stop()


def seed(server):
    """The VMs the target expects, on two nodes."""
    server.reset()
    c = server.cluster
    c.add_vm(100, "pve2", {"name": "web-01", "ostype": "l26", "memory": "2048"}, running=True)
    c.add_vm(101, "pve1", {"name": "db-01", "ostype": "l26", "watchdog": "i6300esb"})
    c.add_vm(102, "pve1", {"name": "win-01", "ostype": "win11"}, running=True)
    pending = c.add_vm(103, "pve1", {"name": "pending-01", "ostype": "l26"}, running=True)
    pending.pending["watchdog"] = "model=i6300esb,action=reset"
    c.add_vm(104, "pve1", {"name": "ct-01"}, kind="lxc")
    c.add_vm(105, "pve1", {"name": "dup"})
    c.add_vm(106, "pve2", {"name": "dup"})
    c.add_vm(107, "pve1", {"name": "edited-01"}, running=True)
    c.add_vm(108, "pve1", {"name": "broken-01"})


def real_host_vars():
    """run_target variables for the real Proxmox VE host of VMHEALTH_TEST_PROXMOX_*, or None."""
    env = os.environ
    if not env.get("VMHEALTH_TEST_PROXMOX_HOST"):
        return None
    return {
        "pve_double": False,
        "pve_api_host": env["VMHEALTH_TEST_PROXMOX_HOST"],
        "pve_api_port": int(env.get("VMHEALTH_TEST_PROXMOX_PORT", "8006")),
        "pve_api_user": env["VMHEALTH_TEST_PROXMOX_USER"],
        "pve_api_token_id": env["VMHEALTH_TEST_PROXMOX_TOKEN_ID"],
        "pve_api_token_secret": env["VMHEALTH_TEST_PROXMOX_TOKEN_SECRET"],
        "pve_cycle_vm": env["VMHEALTH_TEST_PROXMOX_VM"],
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(pve_server, scenario, tmp_path):
    """Each scenario against the test double; ``cycle`` against a real host when one is given."""
    real = real_host_vars() if scenario == "cycle" else None
    if real is not None:
        runner = PveRunner(ca=os.environ.get("VMHEALTH_TEST_PROXMOX_CA"), workdir=tmp_path)
        assert_ok(runner.run_target("qemu_watchdog_proxmox", pve_scenario=scenario, **real))
        return
    seed(pve_server)
    user, token_id = next(iter(pve_server.tokens)).split("!")
    runner = PveRunner(pve_server, ca=pve_server.ca_path, workdir=tmp_path)
    proc = runner.run_target(
        "qemu_watchdog_proxmox",
        pve_scenario=scenario,
        pve_double=True,
        pve_api_host=pve_server.host,
        pve_api_port=pve_server.port,
        pve_api_user=user,
        pve_api_token_id=token_id,
        pve_api_token_secret=pve_server.tokens[next(iter(pve_server.tokens))],
        pve_password=pve_server.users["root@pam"],
        pve_control_url=pve_server.url,
        pve_ca_path=str(pve_server.ca_path),
    )
    assert_ok(proc)
    if scenario == "cycle":
        assert pve_server.cluster.reboots == [100, 100]
        assert "watchdog" not in pve_server.cluster.vms[100].config
