"""Unit tests of the qemu_watchdog module entry point (argument spec, platform dispatch, exit/fail)."""

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt import runner
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog import proxmox
from ansible_collections.vmhealth.kvm.plugins.modules import qemu_watchdog

from ..module_utils.fake_api import FakeApi
from .conftest import Exit, Fail


@pytest.fixture
def connects(monkeypatch):
    """Record every attempt to reach an API (Kubernetes, Proxmox VE)."""
    calls = []
    fake = FakeApi()

    def kube_connect(module):
        calls.append("kubernetes")
        return fake

    def pve_connect(params, timeout=30):
        calls.append("proxmox")
        raise AssertionError("must not connect")

    monkeypatch.setattr(runner, "connect", kube_connect)
    monkeypatch.setattr(proxmox, "connect", pve_connect)
    return calls


def run(args):
    with patch_module_args(args):
        qemu_watchdog.main()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            {"platform": "kubevirt", "namespace": "ns", "model": "itco"},
            "model: itco is not available on kubevirt",
        ),
        (
            {"platform": "kubevirt", "namespace": "ns", "parallel": 0},
            "parallel: must be between 1 and 64",
        ),
        ({"platform": "libvirt"}, "name: the domain name is required with platform=libvirt"),
        (
            {"platform": "libvirt", "name": "d", "uri": "system"},
            "uri: 'system' is not a libvirt URI",
        ),
        (
            {"platform": "proxmox", "vmid": 100, "api_host": "h", "api_user": "root@pam"},
            "an API token or a password is required",
        ),
        (
            {"platform": "proxmox", "api_host": "h", "api_user": "root@pam", "api_password": "pw"},
            "vmid, name: exactly one of them is required",
        ),
        (
            {
                "platform": "proxmox",
                "vmid": 100,
                "api_host": "h",
                "api_user": "root@pam",
                "api_password": "pw",
                "model": "ib700",
            },
            "model: ib700 is refused on Proxmox VE",
        ),
    ],
)
def test_invalid_input_fails_before_connecting(module_calls, connects, args, message):
    with pytest.raises(Fail) as err:
        run(args)
    assert message in err.value.args[0]["msg"]
    assert connects == []


def test_kubevirt_runs_the_fleet_engine(module_calls, connects):
    with pytest.raises(Exit) as done:
        run({"platform": "kubevirt", "namespace": "ns", "action": "shutdown"})
    assert connects == ["kubernetes"]
    assert done.value.args[0]["vms"] == [] and not done.value.args[0]["changed"]


def test_libvirt_test_driver_end_to_end(module_calls):
    libvirt = pytest.importorskip("libvirt")
    keep = libvirt.open("test:///default")  # keeps the driver's in-memory state between runs
    try:
        args = {
            "platform": "libvirt",
            "uri": "test:///default",
            "name": "test",
            "action": "poweroff",
            "panic_device": "isa",
            "_ansible_diff": True,
        }
        with pytest.raises(Exit) as first:
            run(args)
        result = first.value.args[0]
        assert result["changed"] and result["vms"][0]["action"] == "created"
        assert result["vms"][0]["restart_required"]
        assert result["diff"][0]["after"] == {
            "watchdog": [{"model": "i6300esb", "action": "poweroff"}],
            "panic": ["isa"],
        }
        with pytest.raises(Exit) as second:
            run(dict(args, restart="if_needed", shutdown_timeout=5))
        assert second.value.args[0]["vms"][0]["restarted"]
        with pytest.raises(Exit) as third:
            run(args)
        assert (
            not third.value.args[0]["changed"]
            and not third.value.args[0]["vms"][0]["restart_required"]
        )
    finally:
        dom = keep.lookupByName("test")
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        keep.close()
    assert '<watchdog model="i6300esb" action="poweroff"' in xml or "model='i6300esb'" in xml


def test_libvirt_missing_domain_fails(module_calls):
    pytest.importorskip("libvirt")
    with pytest.raises(Fail) as err:
        run({"platform": "libvirt", "uri": "test:///default", "name": "nope"})
    assert "Domain 'nope' not found" in err.value.args[0]["msg"]
