"""Unit tests of the restart rollout: batching, waiting and stopping, on an in-memory API."""

import itertools

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ApiError
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.fleet import Item
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.rollout import Rollout, batches


class ImmediatePool:
    def map(self, fn, items):
        return [fn(i) for i in items]


class RestartingApi:
    """Each restart replaces the VMI; VMs in ``never_ready`` never become Ready."""

    def __init__(self, names, never_ready=()):
        self.uids = itertools.count(1)
        self.vmis = {n: {"uid": str(next(self.uids)), "ready": True} for n in names}
        self.never_ready = set(never_ready)
        self.log = []

    def get(self, path):
        name = path.rsplit("/", 1)[1]
        if name not in self.vmis:
            raise ApiError("not found", status=404)
        vmi = self.vmis[name]
        status = "True" if vmi["ready"] else "False"
        return {
            "metadata": {"uid": vmi["uid"]},
            "status": {"conditions": [{"type": "Ready", "status": status}]},
        }

    def put(self, path, body, retry_disconnect=True):
        name = path.split("/")[-2]
        self.log.append(name)
        self.vmis[name] = {"uid": str(next(self.uids)), "ready": name not in self.never_ready}
        return {}


def items(names, strategy="Always"):
    out = []
    for name in names:
        item = Item("VirtualMachine", "ns", name)
        item.run_strategy = strategy
        item.running = True
        item.restart_required = True
        out.append(item)
    return out


def rollout(api, mode="rolling", max_unavailable=2, population=5, **kwargs):
    clock = itertools.count(0, 10)
    return Rollout(
        api,
        ImmediatePool(),
        mode,
        max_unavailable,
        population,
        wait_timeout=30,
        wait_sleep=1,
        clock=lambda: next(clock),
        sleep=lambda s: None,
        **kwargs,
    )


def test_batches():
    assert batches([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_rolling_restarts_all_in_batches():
    names = ["a", "b", "c", "d", "e"]
    api = RestartingApi(names)
    vms = items(names)
    summary = rollout(api).run(vms)
    assert summary == {
        "mode": "rolling",
        "batch_size": 2,
        "batches": 3,
        "completed_batches": 3,
        "stopped": False,
        "not_ready": [],
    }
    assert api.log == names
    assert all(vm.restarted and vm.ready and not vm.restart_required for vm in vms)


def test_rollout_stops_at_first_batch_not_ready():
    names = ["a", "b", "c", "d", "e"]
    api = RestartingApi(names, never_ready=["c"])
    vms = items(names)
    summary = rollout(api).run(vms)
    assert summary["stopped"] is True and summary["stopped_at_batch"] == 2
    assert summary["not_ready"] == ["ns/c"]
    assert api.log == ["a", "b", "c", "d"]
    by_name = {vm.name: vm for vm in vms}
    assert by_name["c"].ready is False and "not Ready within 30 s" in by_name["c"].reason
    assert by_name["d"].ready is True
    assert not by_name["e"].restarted and "rollout stopped because batch 2" in by_name["e"].reason


def test_percentage_of_population():
    names = ["a", "b", "c", "d"]
    summary = rollout(RestartingApi(names), max_unavailable="50%", population=8).run(items(names))
    assert summary["batch_size"] == 4 and summary["batches"] == 1


def test_run_strategies_that_forbid_restarts_are_left_alone():
    api = RestartingApi(["once", "halted"])
    vms = items(["once"], strategy="Once") + items(["halted"], strategy="Halted")
    summary = rollout(api, mode="if_needed").run(vms)
    assert api.log == [] and summary["batches"] == 0
    assert "runStrategy Once" in vms[0].reason and "runStrategy Halted" in vms[1].reason
    assert not vms[0].restarted


def test_check_mode_restarts_nothing():
    api = RestartingApi(["a"])
    vms = items(["a"])
    rollout(api, mode="if_needed", check_mode=True).run(vms)
    assert api.log == [] and "check mode" in vms[0].reason


def test_vm_without_vmi_is_not_restarted():
    api = RestartingApi(["a"])
    del api.vmis["a"]
    vms = items(["a"])
    rollout(api, mode="if_needed").run(vms)
    assert api.log == [] and not vms[0].restart_required and "not running any more" in vms[0].reason
