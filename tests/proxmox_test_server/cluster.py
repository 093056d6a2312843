"""The state and rules of the Proxmox VE test double: VMs, config with pending changes, tasks.

This is a test double, not Proxmox VE. It models the part of qemu-server's behaviour that
qemu_watchdog relies on, as read from qemu-server and pve-common (PVE::API2::Qemu,
PVE::QemuConfig, PVE::JSONSchema):

* a VM config holds live values plus pending values and pending deletions;
* ``GET config`` answers with pending changes applied (``current=1``: the live values only)
  and a ``digest`` of the whole config; ``GET pending`` lists key/value/pending/delete;
* a write carrying a stale ``digest`` is refused (HTTP 500 "detected modified configuration");
* on a stopped VM a write is applied at once; on a running VM only the fast-plug options are,
  everything else (the watchdog included) stays pending until an API reboot or stop/start;
  pending values equal to the live ones are dropped (cleanup_pending);
* parameter validation answers 400 ``{"errors": {<param>: <message>}, "data": null}``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time


class ApiError(Exception):
    """An API error: HTTP status, status-line message and per-parameter errors."""

    def __init__(self, status: int, message: str, errors: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


PARAM_FAILED = "Parameter verification failed."
NOT_IN_SCHEMA = (
    "property is not defined in schema and the schema does not allow additional properties"
)

#: Options applied at once even on a running VM (qemu-server's fast-plug list, abridged).
FAST_PLUG = {"name", "description", "onboot", "protection", "tags", "lock"}
#: Config keys this double knows (a subset of qemu-server's); others are refused like unknown ones.
CONFIG_KEYS = {
    "name",
    "description",
    "onboot",
    "protection",
    "tags",
    "ostype",
    "agent",
    "cores",
    "sockets",
    "memory",
    "machine",
    "boot",
    "scsihw",
    "net0",
    "scsi0",
    "watchdog",
}
WATCHDOG_MODELS = ("i6300esb", "ib700")
WATCHDOG_ACTIONS = ("reset", "shutdown", "poweroff", "pause", "debug", "none")
_NAME = re.compile(r"^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9\-]+)*$")
_DIGEST = re.compile(r"^[a-f0-9]{40}$")


def check_watchdog(value: str) -> None:
    """Validate a pve-qm-watchdog property string like PVE::JSONSchema does."""
    seen = set()
    for part in value.split(","):
        if part == "":
            continue
        key, sep, val = part.partition("=")
        if not sep:
            key, val = "model", key
        if key not in ("model", "action"):
            raise ApiError(
                400,
                PARAM_FAILED,
                {
                    "watchdog": f"invalid format - invalid key in comma-separated list property: {key}\n"
                },
            )
        if key in seen:
            raise ApiError(
                400,
                PARAM_FAILED,
                {
                    "watchdog": f"invalid format - duplicate key in comma-separated list property: {key}\n"
                },
            )
        seen.add(key)
        allowed = WATCHDOG_MODELS if key == "model" else WATCHDOG_ACTIONS
        if val not in allowed:
            raise ApiError(
                400,
                PARAM_FAILED,
                {
                    "watchdog": "invalid format - {0}: value '{1}' does not have a value in the "
                    "enumeration '{2}'\n".format(key, val, ", ".join(allowed))
                },
            )


def check_value(key: str, value: str) -> None:
    if key == "watchdog":
        check_watchdog(value)
    elif key == "name" and not _NAME.match(value):
        raise ApiError(400, PARAM_FAILED, {"name": "value does not look like a valid DNS name\n"})
    elif key in ("cores", "sockets", "memory") and not str(value).isdigit():
        raise ApiError(400, PARAM_FAILED, {key: f"type check ('integer') failed - got '{value}'\n"})


class Vm:
    def __init__(self, vmid: int, node: str, config: dict, running: bool, kind: str = "qemu"):
        self.vmid = vmid
        self.node = node
        self.config = dict(config)  # live values
        self.pending: dict = {}
        self.pending_delete: set = set()
        self.running = running
        self.kind = kind

    def effective(self) -> dict:
        """Config with pending changes applied."""
        conf = {k: v for k, v in self.config.items() if k not in self.pending_delete}
        conf.update(self.pending)
        return conf

    def digest(self) -> str:
        raw = json.dumps(
            [self.config, self.pending, sorted(self.pending_delete)], sort_keys=True
        ).encode()
        return hashlib.sha1(raw).hexdigest()

    def apply_pending(self) -> None:
        for key in self.pending_delete:
            self.config.pop(key, None)
        self.config.update(self.pending)
        self.pending, self.pending_delete = {}, set()

    def cleanup_pending(self) -> None:
        for key in [k for k, v in self.pending.items() if self.config.get(k) == v]:
            del self.pending[key]
        self.pending_delete = {k for k in self.pending_delete if k in self.config}


class Cluster:
    """VMs by vmid, finished tasks by UPID; one lock around everything."""

    def __init__(self, node_names=("pve1", "pve2")):
        self.lock = threading.RLock()
        self.node_names = tuple(node_names)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.vms: dict[int, Vm] = {}
            self.tasks: dict[str, dict] = {}
            self.reboots: list[int] = []

    def add_vm(self, vmid, node="pve1", config=None, running=False, kind="qemu") -> Vm:
        with self.lock:
            if node not in self.node_names:
                raise ValueError(f"unknown node {node}")
            vm = Vm(int(vmid), node, config or {}, running, kind)
            self.vms[vm.vmid] = vm
            return vm

    # -- API operations ------------------------------------------------------------------

    def resources(self, rtype: str | None) -> list:
        if rtype not in (None, "vm", "storage", "node", "sdn"):
            raise ApiError(
                400,
                PARAM_FAILED,
                {
                    "type": f"value '{rtype}' does not have a value in the enumeration 'vm, storage, node, sdn'\n"
                },
            )
        out = []
        if rtype in (None, "node"):
            out += [
                {"id": f"node/{n}", "type": "node", "node": n, "status": "online"}
                for n in self.node_names
            ]
        if rtype in (None, "vm"):
            for vm in self.vms.values():
                out.append(
                    {
                        "id": f"{vm.kind}/{vm.vmid}",
                        "type": vm.kind,
                        "vmid": vm.vmid,
                        "name": vm.config.get("name", f"VM {vm.vmid}"),
                        "node": vm.node,
                        "status": "running" if vm.running else "stopped",
                        "template": 0,
                    }
                )
        return out

    def vm(self, node: str, vmid: str) -> Vm:
        if node not in self.node_names:
            raise ApiError(595, f"no such cluster node '{node}'")
        try:
            number = int(vmid)
        except ValueError:
            raise ApiError(
                400, PARAM_FAILED, {"vmid": f"type check ('integer') failed - got '{vmid}'\n"}
            ) from None
        vm = self.vms.get(number)
        if vm is None or vm.node != node or vm.kind != "qemu":
            raise ApiError(
                500, f"Configuration file 'nodes/{node}/qemu-server/{number}.conf' does not exist"
            )
        return vm

    def get_config(self, vm: Vm, current: bool) -> dict:
        conf = dict(vm.config if current else vm.effective())
        conf["digest"] = vm.digest()
        return conf

    def get_pending(self, vm: Vm) -> list:
        out = []
        for key in sorted(set(vm.config) | set(vm.pending) | vm.pending_delete):
            entry = {"key": key}
            if key in vm.config:
                entry["value"] = vm.config[key]
            if key in vm.pending:
                entry["pending"] = vm.pending[key]
            if key in vm.pending_delete:
                entry["delete"] = 1
            out.append(entry)
        return out

    def update_config(self, vm: Vm, params: dict) -> None:
        params = dict(params)
        digest = params.pop("digest", None)
        deletes = params.pop("delete", None)
        params.pop("skiplock", None)
        revert = params.pop("revert", None)
        errors = {}
        for key in params:
            if key not in CONFIG_KEYS:
                errors[key] = NOT_IN_SCHEMA
        if digest is not None and not _DIGEST.match(digest):
            errors["digest"] = "value may only be 40 characters long\n"
        if errors:
            raise ApiError(400, PARAM_FAILED, errors)
        delete_keys = [k.strip() for k in (deletes or "").split(",") if k.strip()]
        for key in delete_keys:
            if key not in CONFIG_KEYS:
                raise ApiError(400, PARAM_FAILED, {"delete": f"invalid configuration ID '{key}'\n"})
            if key in params:
                raise ApiError(
                    500, f"unable to delete and set parameter '{key}' at the same time\n"
                )
        for key, value in params.items():
            check_value(key, str(value))
        if not params and not delete_keys and not revert:
            raise ApiError(500, "no options specified\n")
        if digest is not None and digest != vm.digest():
            raise ApiError(
                500, "detected modified configuration - file changed by other user? Try again.\n"
            )
        for key in delete_keys:
            if key not in vm.config and key not in vm.pending:
                continue  # qemu-server warns and goes on
            vm.pending.pop(key, None)
            vm.pending_delete.add(key)
        for key, value in params.items():
            vm.pending_delete.discard(key)
            vm.pending[key] = str(value)
        for key in (revert or "").split(","):
            vm.pending.pop(key.strip(), None)
            vm.pending_delete.discard(key.strip())
        if not vm.running:
            vm.apply_pending()
        else:
            for key in list(vm.pending):
                if key in FAST_PLUG:
                    vm.config[key] = vm.pending.pop(key)
            for key in list(vm.pending_delete):
                if key in FAST_PLUG:
                    vm.config.pop(key, None)
                    vm.pending_delete.discard(key)
            vm.cleanup_pending()

    def status(self, vm: Vm) -> dict:
        return {
            "vmid": vm.vmid,
            "name": vm.config.get("name"),
            "status": "running" if vm.running else "stopped",
            "qmpstatus": "running" if vm.running else "stopped",
        }

    def _task(self, vm: Vm, kind: str, user: str) -> str:
        upid = "UPID:{0}:{1:08X}:{2:08X}:{3:08X}:{4}:{5}:{6}:".format(
            vm.node,
            4242,
            int(time.monotonic() * 1000) & 0xFFFFFFFF,
            int(time.time()),
            kind,
            vm.vmid,
            user,
        )
        self.tasks[upid] = {
            "upid": upid,
            "node": vm.node,
            "type": kind,
            "id": str(vm.vmid),
            "user": user,
            "status": "stopped",
            "exitstatus": "OK",
        }
        return upid

    def reboot(self, vm: Vm, user: str) -> str:
        if not vm.running:
            raise ApiError(500, f"VM {vm.vmid} not running\n")
        vm.apply_pending()
        self.reboots.append(vm.vmid)
        return self._task(vm, "qmreboot", user)

    def config_task(self, vm: Vm, user: str) -> str:
        return self._task(vm, "qmconfig", user)

    def task_status(self, node: str, upid: str) -> dict:
        task = self.tasks.get(upid)
        if task is None or task["node"] != node:
            raise ApiError(500, f"unable to parse worker upid '{upid}'\n")
        return task
