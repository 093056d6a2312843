"""kubevirt_vm_probe end to end: the integration target's scenarios through ansible-playbook."""

import pytest

from .conftest import assert_ok

SCENARIOS = ["handlers", "selection", "templates", "warnings", "invalid", "faults"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(fresh_cluster, scenario):
    assert_ok(fresh_cluster.run_target("kubevirt_vm_probe", probe_scenario=scenario))


def test_rollout(fresh_cluster):
    proc = fresh_cluster.run_target("kubevirt_vm_probe", probe_scenario="rollout")
    assert_ok(proc)
    if not fresh_cluster.double:
        return
    # Restarted VMs become Ready 2 s after their restart (set by the target), so a VM is
    # unavailable during [restart, restart + 2 s]: never more than max_unavailable=2 of
    # those windows may overlap.
    restarts = sorted(
        r["time"]
        for r in fresh_cluster.server.requests()
        if r["method"] == "PUT" and r["path"].endswith("/restart") and "/r-" in r["path"]
    )
    assert len(restarts) == 6
    for t in restarts:
        overlapping = [u for u in restarts if t - 2.0 < u <= t]
        assert len(overlapping) <= 2, restarts
