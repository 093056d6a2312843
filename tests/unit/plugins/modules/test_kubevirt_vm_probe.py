"""Unit tests of the kubevirt_vm_probe module entry point (argument spec, exit and fail paths)."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt import runner
from ansible_collections.vmhealth.kvm.plugins.modules import kubevirt_vm_probe

from ..module_utils.fake_api import FakeApi
from ..module_utils.test_fleet import VMS, make_vm
from .conftest import Exit, Fail


@pytest.fixture
def api(monkeypatch):
    fake = FakeApi()
    connects = []

    def connect(module):
        connects.append(module)
        return fake

    monkeypatch.setattr(runner, "connect", connect)
    fake.connects = connects
    return fake


def run(args):
    with patch_module_args(args):
        kubevirt_vm_probe.main()


def test_invalid_input_fails_before_connecting(module_calls, api):
    with pytest.raises(Fail) as err:
        run(
            {
                "namespace": "ns",
                "probe": "readiness",
                "guest_agent_ping": True,
                "timeout_seconds": 10,
            }
        )
    assert "timeout_seconds: 10 must be lower than period_seconds" in err.value.args[0]["msg"]
    assert api.connects == [] and api.calls == []


def test_argument_spec_rejects_two_handlers(module_calls, api):
    with pytest.raises(Fail) as err:
        run(
            {
                "namespace": "ns",
                "probe": "readiness",
                "guest_agent_ping": True,
                "exec": {"command": ["x"]},
            }
        )
    assert "mutually exclusive" in err.value.args[0]["msg"]
    assert api.calls == []


def test_converge_reports_per_vm_results(module_calls, api):
    api.add(VMS + "/a", make_vm("a"))
    with pytest.raises(Exit) as done:
        run(
            {"namespace": "ns", "probe": "readiness", "guest_agent_ping": True, "period_seconds": 5}
        )
    result = done.value.args[0]
    assert result["changed"] is True
    assert result["detection_seconds"] == 5 * 3 + 1
    assert result["vms"][0]["action"] == "created"
    json.dumps(result)  # everything returned is JSON-serialisable


def test_check_mode_writes_nothing(module_calls, api):
    api.add(VMS + "/a", make_vm("a"))
    with pytest.raises(Exit) as done:
        run(
            {
                "namespace": "ns",
                "probe": "readiness",
                "guest_agent_ping": True,
                "_ansible_check_mode": True,
            }
        )
    assert done.value.args[0]["changed"] is True
    assert api.writes() == []


def test_failed_vm_fails_the_task_with_a_summary(module_calls, api):
    api.add(
        VMS + "/multus", make_vm("multus", networks=[{"name": "m", "multus": {"networkName": "n"}}])
    )
    with pytest.raises(Fail) as err:
        run({"namespace": "ns", "probe": "readiness", "tcp_socket": {"port": 22}})
    result = err.value.args[0]
    assert result["msg"].startswith("1 object(s) failed: VirtualMachine ns/multus: ")
    assert result["counts"]["failed"] == 1
