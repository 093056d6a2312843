"""qemu_watchdog on KubeVirt: the integration target's scenarios through ansible-playbook."""

import pytest

from .conftest import assert_ok

SCENARIOS = ["cycle", "refusals", "concurrent", "invalid"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(fresh_cluster, scenario):
    assert_ok(fresh_cluster.run_target("qemu_watchdog_kubevirt", wd_scenario=scenario))


def test_rollout(fresh_cluster):
    proc = fresh_cluster.run_target("qemu_watchdog_kubevirt", wd_scenario="rollout")
    assert_ok(proc)
    if not fresh_cluster.double:
        return
    # Restarted VMs become Ready 2 s after their restart (set by the target): never more than
    # max_unavailable=2 restart windows may overlap, and the Halted VM is never restarted.
    restarts = sorted(
        r["time"]
        for r in fresh_cluster.server.requests()
        if r["method"] == "PUT" and r["path"].endswith("/restart")
    )
    paths = [r["path"] for r in fresh_cluster.server.requests() if r["path"].endswith("/restart")]
    assert len(restarts) == 5, paths
    assert not any("halted" in p for p in paths)
    for t in restarts:
        overlapping = [u for u in restarts if t - 2.0 < u <= t]
        assert len(overlapping) <= 2, restarts
