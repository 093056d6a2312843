"""Unit tests of qemu_watchdog's Proxmox VE backend.

The option-string part is tested on literals; the API part against the Proxmox VE API test
double (tests/proxmox_test_server) in-process, through the real proxmoxer client.
"""

import pytest

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import VmHealthError
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog import proxmox
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.common import (
    WatchdogSpec,
    reconcile,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.proxmox import (
    format_watchdog,
    is_windows_ostype,
    parse_watchdog,
    pending_views,
    plan_option,
)


def spec(**kw):
    params = {"platform": "proxmox", "state": "present", "model": "auto", "restart": "never"}
    params.update(kw)
    return WatchdogSpec.from_params(params)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("i6300esb", {"model": "i6300esb", "action": None}),
        ("model=ib700", {"model": "ib700", "action": None}),
        ("model=i6300esb,action=reset", {"model": "i6300esb", "action": "reset"}),
        ("action=pause", {"model": "i6300esb", "action": "pause"}),
        ("ib700,action=debug", {"model": "ib700", "action": "debug"}),
        (" model=i6300esb , action=none ", {"model": "i6300esb", "action": "none"}),
    ],
)
def test_parse_watchdog(value, expected):
    assert parse_watchdog(value) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ("model=sp805", "model 'sp805' is not one of"),
        ("action=explode", "action 'explode' is not one of"),
        ("model=i6300esb,timeout=30", "unknown key 'timeout'"),
        ("model=i6300esb,model=ib700", "duplicate key 'model'"),
    ],
)
def test_parse_watchdog_rejects(value, message):
    with pytest.raises(ValueError, match=message):
        parse_watchdog(value)


def test_format_round_trip():
    assert format_watchdog("i6300esb", "reset") == "model=i6300esb,action=reset"
    assert format_watchdog("ib700", None) == "model=ib700"
    assert parse_watchdog(format_watchdog("i6300esb", "poweroff")) == {
        "model": "i6300esb",
        "action": "poweroff",
    }


def test_plan_option():
    assert plan_option(None, spec()) == (
        {"watchdog": "model=i6300esb,action=reset"},
        {"watchdog": {"model": "i6300esb", "action": "reset"}},
    )
    # No action means QEMU's reset: equal, not rewritten.
    assert plan_option("i6300esb", spec(action="reset"))[0] is None
    assert plan_option("model=i6300esb,action=reset", spec(action="poweroff"))[0] == {
        "watchdog": "model=i6300esb,action=poweroff"
    }
    assert plan_option("ib700", spec())[0] == {"watchdog": "model=i6300esb,action=reset"}
    assert plan_option("i6300esb", spec(state="absent")) == ({"delete": "watchdog"}, {})
    assert plan_option("", spec(state="absent")) == (None, {})


def test_pending_views():
    assert pending_views([{"key": "name", "value": "x"}]) == ({}, {})
    wd = {"watchdog": {"model": "i6300esb", "action": "reset"}}
    assert pending_views([{"key": "watchdog", "value": "i6300esb"}]) == (wd, wd)
    assert pending_views([{"key": "watchdog", "pending": "i6300esb"}]) == ({}, wd)
    assert pending_views([{"key": "watchdog", "value": "i6300esb", "delete": 1}]) == (wd, {})


def test_windows_ostypes():
    assert all(is_windows_ostype(o) for o in ("win11", "win7", "w2k8", "wxp", "wvista"))
    assert not any(is_windows_ostype(o) for o in ("l26", "l24", "solaris", "other", None))


# -- against the test double -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from proxmox_test_server import ProxmoxTestServer

    srv = ProxmoxTestServer(workdir=tmp_path_factory.mktemp("pve")).start()
    yield srv
    srv.stop()


@pytest.fixture
def pve(server, monkeypatch):
    server.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
    token_id, secret = next(iter(server.tokens.items()))
    user, token = token_id.split("!")
    params = {
        "api_host": "127.0.0.1",
        "api_port": server.port,
        "api_user": user,
        "api_token_id": token,
        "api_token_secret": secret,
        "validate_certs": True,
    }
    server.params = params
    return server


def make_backend(server, sp, **kw):
    client = proxmox.ProxmoxClient(proxmox.connect(server.params), sleep=lambda s: None)
    return proxmox.ProxmoxBackend(client, sp, shutdown_timeout=10, wait_timeout=10, **kw)


def run(server, restart="never", check_mode=False, **kw):
    vm = {k: kw.pop(k) for k in ("vmid", "name") if k in kw}
    sp = spec(**kw)
    return reconcile(
        make_backend(server, sp, **vm), sp, restart=restart, check_mode=check_mode, diff_mode=True
    )


def test_running_vm_pending_then_reboot(pve):
    vm = pve.cluster.add_vm(100, "pve2", {"name": "web"}, running=True)
    first = run(pve, vmid=100)
    assert first["vms"][0]["action"] == "created" and first["vms"][0]["restart_required"]
    assert first["vms"][0]["node"] == "pve2"
    assert vm.pending == {"watchdog": "model=i6300esb,action=reset"} and "watchdog" not in vm.config
    mark = pve.mark()
    again = run(pve, name="web")
    assert not again["changed"] and again["vms"][0]["restart_required"]
    assert pve.writes(mark) == []
    rebooted = run(pve, vmid=100, restart="if_needed")
    assert rebooted["vms"][0]["restarted"] and pve.cluster.reboots == [100]
    assert vm.config["watchdog"] == "model=i6300esb,action=reset" and vm.pending == {}


def test_check_mode_zero_writes(pve):
    pve.cluster.add_vm(100, "pve1", {"name": "web"}, running=True)
    mark = pve.mark()
    result = run(pve, vmid=100, restart="if_needed", check_mode=True)
    assert result["changed"] and pve.writes(mark) == []


def test_stale_digest_is_replanned(pve):
    vm = pve.cluster.add_vm(100, "pve1", {"name": "web"})
    pve.add_fault(
        {
            "type": "concurrent",
            "vmid": 100,
            "set": {"description": "other"},
            "match": {"method": "PUT"},
        }
    )
    result = run(pve, vmid=100)
    assert result["vms"][0]["action"] == "created"
    assert vm.config == {
        "name": "web",
        "description": "other",
        "watchdog": "model=i6300esb,action=reset",
    }
    assert len([r for r in pve.writes() if r["method"] == "PUT"]) == 2


def test_concurrent_identical_change_is_not_written_again(pve):
    vm = pve.cluster.add_vm(100, "pve1", {"name": "web"})
    pve.add_fault(
        {
            "type": "concurrent",
            "vmid": 100,
            "set": {"watchdog": "i6300esb"},
            "match": {"method": "PUT"},
        }
    )
    run(pve, vmid=100)
    assert vm.config["watchdog"] == "i6300esb"
    assert len([r for r in pve.writes() if r["method"] == "PUT"]) == 1


def test_retries_are_bounded(pve):
    pve.cluster.add_vm(100, "pve1", {"name": "web"})
    pve.add_fault({"type": "error", "status": 429, "count": 2, "match": {"method": "GET"}})
    assert run(pve, vmid=100)["changed"]
    pve.add_fault(
        {
            "type": "error",
            "status": 502,
            "message": "bad gateway",
            "count": 50,
            "match": {"method": "GET", "path_regex": "/pending$"},
        }
    )
    with pytest.raises(VmHealthError, match="after 6 attempts"):
        run(pve, vmid=100)


def test_api_errors_are_reported_with_fields(pve):
    pve.cluster.add_vm(100, "pve1", {"name": "web"})
    client = proxmox.ProxmoxClient(proxmox.connect(pve.params), sleep=lambda s: None)
    with pytest.raises(VmHealthError) as err:
        client.request("put", "nodes/pve1/qemu/100/config", watchdog="model=sp805")
    assert "watchdog: invalid format - model: value 'sp805'" in str(err.value)
    assert "400" in str(err.value)


def test_bad_token_fails_without_echoing_it(pve):
    pve.cluster.add_vm(100, "pve1", {"name": "web"})
    params = dict(pve.params, api_token_secret="wrong-secret-value")
    client = proxmox.ProxmoxClient(proxmox.connect(params), sleep=lambda s: None)
    with pytest.raises(VmHealthError) as err:
        proxmox.ProxmoxBackend(client, spec(), vmid=100).read()
    assert "401" in str(err.value) and "wrong-secret-value" not in str(err.value)


def test_bad_password_fails(pve):
    params = {k: v for k, v in pve.params.items() if not k.startswith("api_token")}
    params.update(api_user="root@pam", api_password="nope")
    with pytest.raises(VmHealthError, match="authentication failed"):
        proxmox.connect(params)
