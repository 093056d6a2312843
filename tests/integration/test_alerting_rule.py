"""alerting_rule through ansible-playbook: the integration target's scenarios.

The cluster scenarios run against the Kubernetes API test double by default (or the cluster of
VMHEALTH_TEST_KUBECONFIG); the file scenario uses the real promtool on this machine.
"""

import pytest

from .conftest import assert_ok


@pytest.mark.parametrize("scenario", ["prometheus_operator", "openshift", "invalid", "faults"])
def test_cluster_scenario(fresh_cluster, scenario):
    assert_ok(fresh_cluster.run_target("alerting_rule", alerting_scenario=scenario))


def test_file_scenario(cluster, tmp_path):
    proc = cluster.run_target(
        "alerting_rule", alerting_scenario="file", alerting_file_dir=str(tmp_path / "rules")
    )
    assert_ok(proc)
