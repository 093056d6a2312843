"""A simplified, synchronous virt-controller and virt-api for the test double.

What it does (all inside the same store lock as the write that triggers it):

- keeps one VirtualMachineInstance per running VirtualMachine, created from ``spec.template``
  (labels/annotations from ``spec.template.metadata``, spec copied from ``spec.template.spec``,
  ownerReference to the VM, annotation ``kubevirt.io/vm-generation``), per the run strategy:
  Always / RerunOnFailure / Once start it, Halted / WaitAsReceiver stop it, Manual leaves it;
- maintains VM status: printableStatus, created, ready, runStrategy, desired/observedGeneration and
  conditions (VMI conditions copied, Ready=False reason VMINotExists without a VMI, and
  RestartRequired once ``spec.template.spec`` differs from what the running VMI was built from);
- serves the start / stop / restart subresources with KubeVirt's status codes and messages;
- runs the checks of KubeVirt's validating webhooks that this project relies on (run strategy,
  probes, start strategy).

VMI readiness is controllable: every new VMI is Ready immediately by default; per VM, or globally,
it can be "never ready" (False) or "ready after N seconds"; timed transitions are applied lazily
on the next request (:meth:`KubeVirtController.tick`).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from typing import Any

from . import errors
from .errors import FieldError
from .resources import VIRTUAL_MACHINE_INSTANCES, VIRTUAL_MACHINES
from .store import Key, Store, new_uid, now_rfc3339

RUN_STRATEGIES = ("Always", "Halted", "Manual", "RerunOnFailure", "Once", "WaitAsReceiver")
VM_WEBHOOK = "virtualmachine-validator.kubevirt.io"
VMI_WEBHOOK = "virtualmachineinstances-create-validator.kubevirt.io"
RESTART_REQUIRED_MESSAGE = "a non-live-updatable field was changed in the template spec"
VM_GENERATION_ANNOTATION = "kubevirt.io/vm-generation"
NODE_NAME = "node01"

# Readiness behaviour: True = Ready at once, False = never (until set), float = Ready after N seconds
Readiness = bool | float


def run_strategy(vm: dict[str, Any]) -> str:
    """vm.RunStrategy(): legacy spec.running maps to Always/Halted."""
    spec = vm.get("spec") or {}
    if "running" in spec and spec["running"] is not None:
        return "Always" if spec["running"] else "Halted"
    return spec.get("runStrategy") or "Halted"


def _probe_causes(path: str, probe: Any) -> list[FieldError]:
    if not isinstance(probe, dict):
        return []
    handlers = sum(
        1
        for key in ("httpGet", "tcpSocket", "exec", "guestAgentPing")
        if probe.get(key) is not None
    )
    if handlers > 1:
        return [FieldError("invalid", path, detail=f"{path} must have exactly one probe type set")]
    if handlers < 1:
        return [
            FieldError(
                "required",
                path,
                detail=f"either {path}.tcpSocket, {path}.exec or {path}.httpGet must be set if a {path} is specified",
            )
        ]
    return []


def _pod_interfaces(spec: dict[str, Any]) -> int:
    networks = spec.get("networks") or []
    interfaces = ((spec.get("domain") or {}).get("devices") or {}).get("interfaces") or []
    if not networks and not interfaces:
        # the mutating webhook adds the default pod network unless autoattach is disabled
        devices = (spec.get("domain") or {}).get("devices") or {}
        return 0 if devices.get("autoattachPodInterface") is False else 1
    pod_networks = {
        n.get("name") for n in networks if isinstance(n, dict) and n.get("pod") is not None
    }
    return sum(1 for i in interfaces if isinstance(i, dict) and i.get("name") in pod_networks)


def _network_causes(spec: dict[str, Any], path: str) -> list[FieldError]:
    """KubeVirt's network admitter: networks and interfaces pair up by name, names are unique.

    (The default pod network and interface are only added when both lists are empty.)
    """
    networks = [n for n in spec.get("networks") or [] if isinstance(n, dict)]
    interfaces = ((spec.get("domain") or {}).get("devices") or {}).get("interfaces") or []
    interfaces = [i for i in interfaces if isinstance(i, dict)]
    network_names = {n.get("name") for n in networks}
    interface_names = {i.get("name") for i in interfaces}
    causes: list[FieldError] = []
    seen: set[Any] = set()
    for idx, network in enumerate(networks):
        field_name = f"{path}.networks[{idx}].name"
        if network.get("name") in seen:
            detail = f"Network with name {json.dumps(network.get('name'))} already exists, every network must have a unique name"
            causes.append(FieldError("duplicate", field_name, detail=detail))
        seen.add(network.get("name"))
        if network.get("name") not in interface_names:
            causes.append(
                FieldError(
                    "required",
                    field_name,
                    detail=f"{field_name} '{network.get('name')}' not found.",
                )
            )
    seen = set()
    for idx, iface in enumerate(interfaces):
        field_name = f"{path}.domain.devices.interfaces[{idx}].name"
        if iface.get("name") in seen:
            detail = "Only one interface can be connected to one specific network"
            causes.append(FieldError("duplicate", field_name, detail=detail))
        seen.add(iface.get("name"))
        if iface.get("name") not in network_names:
            causes.append(
                FieldError(
                    "invalid", field_name, detail=f"{field_name} '{iface.get('name')}' not found."
                )
            )
    return causes


def validate_vmi_spec(spec: Any, path: str) -> list[FieldError]:
    """The parts of KubeVirt's ValidateVirtualMachineInstanceSpec this project depends on."""
    if not isinstance(spec, dict):
        return []
    causes: list[FieldError] = []
    start = spec.get("startStrategy")
    if start is not None:
        if start != "Paused":
            causes.append(
                FieldError(
                    "invalid",
                    f"{path}.startStrategy",
                    detail=f"{path}.startStrategy is set with an unrecognized option: {start}",
                )
            )
        elif spec.get("livenessProbe") is not None:
            causes.append(
                FieldError(
                    "invalid",
                    f"{path}.startStrategy",
                    detail=f"either {path}.startStrategy or {path}.livenessProbe should be provided."
                    "Pausing VMI with LivenessProbe is not supported",
                )
            )
    causes.extend(_network_causes(spec, path))
    for probe_name in ("readinessProbe", "livenessProbe"):
        causes.extend(_probe_causes(f"{path}.{probe_name}", spec.get(probe_name)))
    if _pod_interfaces(spec) < 1:
        for probe_name in ("readinessProbe", "livenessProbe"):
            probe = spec.get(probe_name)
            if not isinstance(probe, dict):
                continue
            for handler in ("httpGet", "tcpSocket"):
                if probe.get(handler) is not None:
                    field_name = f"{path}.{probe_name}.{handler}"
                    causes.append(
                        FieldError(
                            "invalid",
                            field_name,
                            detail=f"{field_name} is only allowed if the Pod Network is attached",
                        )
                    )
    return causes


def validate_vm(vm: dict[str, Any]) -> list[FieldError]:
    """KubeVirt's VM admitter checks for run strategy and template spec."""
    spec = vm.get("spec") or {}
    causes: list[FieldError] = []
    has_running = spec.get("running") is not None
    has_strategy = spec.get("runStrategy") is not None
    if has_running and has_strategy:
        causes.append(
            FieldError(
                "invalid",
                "spec.running",
                detail="Running and RunStrategy are mutually exclusive. "
                "Note that Running is deprecated, please use RunStrategy instead",
            )
        )
    if not has_running and not has_strategy:
        causes.append(FieldError("invalid", "spec.running", detail="RunStrategy must be specified"))
    if has_strategy and spec["runStrategy"] not in RUN_STRATEGIES:
        causes.append(
            FieldError(
                "invalid", "spec.runStrategy", detail=f"Invalid RunStrategy ({spec['runStrategy']})"
            )
        )
    template = spec.get("template") or {}
    causes.extend(validate_vmi_spec(template.get("spec"), "spec.template.spec"))
    return causes


def admit(kind: str, obj: dict[str, Any]) -> None:
    """Run the validating webhook for ``kind``; raises the webhook's 422 rejection."""
    if kind == "VirtualMachine":
        causes, hook = validate_vm(obj), VM_WEBHOOK
    elif kind == "VirtualMachineInstance":
        causes, hook = validate_vmi_spec(obj.get("spec"), "spec"), VMI_WEBHOOK
    else:
        return
    if causes:
        raise errors.webhook_denied(hook, causes)


@dataclass
class VMState:
    """Controller-side memory about one VM (what a real controller keeps in ControllerRevisions)."""

    source_spec: Any = None  # template spec the current VMI was created from
    source_generation: int = 0
    restart_required: bool = False
    started_once: bool = False
    stopped_by_request: bool = False  # a stop request holds a RerunOnFailure VM down until start
    ready_after_restart: Readiness | None = None  # None: use the server default
    agent_after_restart: bool | None = None


def _condition(
    ctype: str, status: bool, now: str, reason: str = "", message: str = ""
) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": ctype,
        "status": "True" if status else "False",
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _ready_condition(ready: bool, now: str) -> dict[str, Any]:
    if ready:
        return _condition("Ready", True, now)
    return _condition("Ready", False, now, "PodNotReady", "virt-launcher pod is not ready")


def _keep_transition_times(
    new: list[dict[str, Any]], old: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    previous = {c.get("type"): c for c in old or []}
    for cond in new:
        prev = previous.get(cond["type"])
        if (
            prev is not None
            and prev.get("status") == cond["status"]
            and prev.get("lastTransitionTime")
        ):
            cond["lastTransitionTime"] = prev["lastTransitionTime"]
    return new


class KubeVirtController:
    """Keeps VMIs and VM status in line with VM specs; serves start/stop/restart."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.states: dict[Key, VMState] = {}
        self.pending_ready: dict[Key, tuple[float, str]] = {}  # VMI key -> (when, uid)
        self.default_ready: Readiness = True
        self.default_agent_connected = True

    # ----------------------------------------------------------------- helpers
    def reset(self) -> None:
        self.states.clear()
        self.pending_ready.clear()

    def state(self, namespace: str, name: str) -> VMState:
        return self.states.setdefault((namespace, name), VMState())

    def _save(self, res: Any, obj: dict[str, Any]) -> dict[str, Any]:
        obj["metadata"]["resourceVersion"] = self.store.next_rv()
        self.store.put(res, obj)
        return obj

    def vmi(self, namespace: str, name: str) -> dict[str, Any] | None:
        entry = self.store.get(VIRTUAL_MACHINE_INSTANCES, namespace, name)
        return entry.obj if entry else None

    # ------------------------------------------------------------- VMI lifecycle
    def _new_vmi(
        self, vm: dict[str, Any], state: VMState, readiness: Readiness, agent: bool
    ) -> dict[str, Any]:
        meta = vm["metadata"]
        template = copy.deepcopy((vm.get("spec") or {}).get("template") or {})
        tmeta = template.get("metadata") or {}
        now = now_rfc3339()
        annotations = dict(tmeta.get("annotations") or {})
        annotations[VM_GENERATION_ANNOTATION] = str(meta.get("generation", 1))
        labels = dict(tmeta.get("labels") or {})
        labels["kubevirt.io/nodeName"] = NODE_NAME
        vmi: dict[str, Any] = {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachineInstance",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": new_uid(),
                "creationTimestamp": now,
                "generation": 1,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "kubevirt.io/v1",
                        "kind": "VirtualMachine",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template.get("spec") or {},
        }
        ready = readiness is True
        vmi["status"] = self._vmi_status(ready, agent, now)
        key = (meta["namespace"], meta["name"])
        self.pending_ready.pop(key, None)
        if not isinstance(readiness, bool):
            self.pending_ready[key] = (time.monotonic() + float(readiness), vmi["metadata"]["uid"])
        state.source_spec = copy.deepcopy(vmi["spec"])
        state.source_generation = int(meta.get("generation", 1))
        state.restart_required = False
        state.started_once = True
        state.stopped_by_request = False
        return vmi

    def initial_vmi_status(self) -> dict[str, Any]:
        """Status of a VMI created directly: Running, Ready unless the default says otherwise."""
        return self._vmi_status(
            self.default_ready is True, self.default_agent_connected, now_rfc3339()
        )

    @staticmethod
    def _vmi_status(ready: bool, agent: bool, now: str) -> dict[str, Any]:
        conditions = [_ready_condition(ready, now)]
        if agent:
            conditions.append(_condition("AgentConnected", True, now))
        return {
            "phase": "Running",
            "nodeName": NODE_NAME,
            "qosClass": "Burstable",
            "conditions": conditions,
            "phaseTransitionTimestamps": [{"phase": "Running", "phaseTransitionTimestamp": now}],
        }

    def _start_vmi(self, vm: dict[str, Any], after_restart: bool) -> None:
        meta = vm["metadata"]
        state = self.state(meta["namespace"], meta["name"])
        readiness: Readiness = self.default_ready
        agent = self.default_agent_connected
        if after_restart or state.started_once:
            if state.ready_after_restart is not None:
                readiness = state.ready_after_restart
            if state.agent_after_restart is not None:
                agent = state.agent_after_restart
        self._save(VIRTUAL_MACHINE_INSTANCES, self._new_vmi(vm, state, readiness, agent))

    def _stop_vmi(self, namespace: str, name: str) -> bool:
        self.pending_ready.pop((namespace, name), None)
        if self.store.remove(VIRTUAL_MACHINE_INSTANCES, namespace, name) is None:
            return False
        self.store.next_rv()  # a delete is a write in etcd too
        return True

    # ------------------------------------------------------------ reconciliation
    def reconcile(self, vm: dict[str, Any], created: bool, dry_run: bool = False) -> None:
        """Bring VMI and ``vm['status']`` in line with ``vm['spec']`` (vm is about to be stored)."""
        meta = vm["metadata"]
        ns, name = meta["namespace"], meta["name"]
        strategy = run_strategy(vm)
        has_vmi = self.vmi(ns, name) is not None
        if not dry_run:
            state = self.state(ns, name)
            if created:
                state.started_once = False
            want: bool | None
            if strategy == "Always" or (
                strategy == "RerunOnFailure" and not state.stopped_by_request
            ):
                want = True
            elif strategy == "Once":
                want = True if not state.started_once else None
            elif strategy in ("Halted", "WaitAsReceiver"):
                want = False
            else:  # Manual: only start/stop requests change it
                want = None
            if want is True and not has_vmi:
                self._start_vmi(vm, after_restart=not created)
                has_vmi = True
            elif want is False and has_vmi:
                self._stop_vmi(ns, name)
                has_vmi = False
            if has_vmi and state.source_spec is not None:
                template_spec = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
                if template_spec != state.source_spec:
                    # sticky like virt-controller: reverting the change does not clear it
                    state.restart_required = True
        vm["status"] = self.vm_status(vm)

    def vm_status(self, vm: dict[str, Any]) -> dict[str, Any]:
        meta = vm["metadata"]
        ns, name = meta["namespace"], meta["name"]
        old = vm.get("status") or {}
        vmi = self.vmi(ns, name)
        state = self.states.get((ns, name))
        now = now_rfc3339()
        status: dict[str, Any] = {
            "runStrategy": run_strategy(vm),
            "desiredGeneration": meta.get("generation", 1),
        }
        if vmi is None:
            status["printableStatus"] = "Stopped"
            conditions = [_condition("Ready", False, now, "VMINotExists", "VMI does not exist")]
            if state is not None:
                status["observedGeneration"] = meta.get("generation", 1)
        else:
            vmi_conditions = copy.deepcopy((vmi.get("status") or {}).get("conditions") or [])
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in vmi_conditions
            )
            status.update({"created": True, "ready": ready, "printableStatus": "Running"})
            status["observedGeneration"] = (
                state.source_generation if state else meta.get("generation", 1)
            )
            conditions = vmi_conditions
            if state is not None and state.restart_required:
                conditions.append(
                    _condition("RestartRequired", True, now, message=RESTART_REQUIRED_MESSAGE)
                )
        status["conditions"] = _keep_transition_times(conditions, old.get("conditions"))
        if not status.get("ready"):
            status.pop("ready", None)
        return status

    def refresh_vm_status(self, namespace: str, name: str) -> None:
        """Recompute a stored VM's status after a VMI change; bumps its resourceVersion if it changed."""
        entry = self.store.get(VIRTUAL_MACHINES, namespace, name)
        if entry is None:
            return
        vm = copy.deepcopy(entry.obj)
        vm["status"] = self.vm_status(vm)
        if vm["status"] != entry.obj.get("status"):
            self._save(VIRTUAL_MACHINES, vm)

    def on_vm_deleted(self, vm: dict[str, Any], orphan: bool) -> None:
        meta = vm["metadata"]
        self.states.pop((meta["namespace"], meta["name"]), None)
        if not orphan:
            self._stop_vmi(meta["namespace"], meta["name"])

    def on_vmi_deleted(self, vmi: dict[str, Any]) -> None:
        """A user deleted a VMI: Always/RerunOnFailure VMs get a new one (the usual way to restart)."""
        meta = vmi["metadata"]
        ns, name = meta["namespace"], meta["name"]
        self.pending_ready.pop((ns, name), None)
        entry = self.store.get(VIRTUAL_MACHINES, ns, name)
        if entry is None:
            return
        if run_strategy(entry.obj) in ("Always", "RerunOnFailure"):
            self._start_vmi(entry.obj, after_restart=True)
        self.refresh_vm_status(ns, name)

    # ------------------------------------------------------------ subresources
    def _fetch_vm(self, namespace: str, name: str) -> dict[str, Any]:
        entry = self.store.get(VIRTUAL_MACHINES, namespace, name)
        if entry is None:
            raise errors.not_found("virtualmachine", "kubevirt.io", name)
        return entry.obj

    @staticmethod
    def _conflict(name: str, why: str) -> errors.ApiError:
        return errors.conflict("virtualmachine", "kubevirt.io", name, why)

    def _set_running(self, vm: dict[str, Any], running: bool) -> None:
        """What virt-api's getRunningJson patch does: flip runStrategy (or legacy running)."""
        new = copy.deepcopy(vm)
        spec = new.setdefault("spec", {})
        if spec.get("running") is not None and spec.get("runStrategy") is None:
            spec["running"] = running
        else:
            spec["runStrategy"] = "Always" if running else "Halted"
        new["metadata"]["generation"] = int(new["metadata"].get("generation", 1)) + 1
        self.reconcile(new, created=False)
        self._save(VIRTUAL_MACHINES, new)

    def action(self, namespace: str, name: str, action: str, body: dict[str, Any]) -> None:
        """PUT .../virtualmachines/{name}/{start|stop|restart}; raises ApiError like virt-api."""
        dry_run = body.get("dryRun") == ["All"]
        if action == "restart":
            grace = body.get("gracePeriodSeconds")
            if grace is not None:
                if not isinstance(grace, int) or isinstance(grace, bool):
                    raise errors.bad_request(
                        "Can not unmarshal Request body to struct, error: json: cannot unmarshal into Go struct "
                        "field RestartOptions.gracePeriodSeconds of type int64"
                    )
                if grace > 0:
                    raise errors.bad_request(
                        "For force restart, only gracePeriod=0 is supported for now"
                    )
                if grace < 0:
                    raise errors.bad_request("gracePeriod has to be greater or equal to 0")
        vm = self._fetch_vm(namespace, name)
        strategy = run_strategy(vm)
        has_vmi = self.vmi(namespace, name) is not None
        if action == "restart":
            if strategy in ("Halted", "Once"):
                # KubeVirt's message has this spelling ("RunStategy") in v1.x
                raise self._conflict(
                    name, f"RunStategy {strategy} does not support manual restart requests"
                )
            if not has_vmi:
                raise self._conflict(name, "VM is not running: Halted")
            if dry_run:
                return
            self._stop_vmi(namespace, name)
            self._start_vmi(vm, after_restart=True)
            self.refresh_vm_status(namespace, name)
        elif action == "start":
            if has_vmi:
                raise self._conflict(name, "VM is already running")
            if strategy in ("Always", "Once"):
                raise self._conflict(name, f"{strategy} does not support manual start requests")
            if dry_run:
                return
            if strategy == "Halted":
                self._set_running(vm, True)
            elif strategy in ("Manual", "RerunOnFailure"):
                self._start_vmi(vm, after_restart=True)
                self.refresh_vm_status(namespace, name)
        elif action == "stop":
            if strategy == "Halted":
                if not has_vmi:
                    raise self._conflict(name, "VM is not running")
                raise self._conflict(
                    name, "Halted only supports manual stop requests with a shorter graceperiod"
                )
            if strategy in ("Manual", "RerunOnFailure", "WaitAsReceiver"):
                if not has_vmi:
                    raise self._conflict(name, "VM is not running")
                if dry_run:
                    return
                self._stop_vmi(namespace, name)
                self.state(namespace, name).stopped_by_request = True
                self.refresh_vm_status(namespace, name)
            else:  # Always, Once
                if dry_run:
                    return
                self._set_running(vm, False)

    # ------------------------------------------------------------ test controls
    def set_vmi_status(
        self,
        namespace: str,
        name: str,
        ready: bool | None = None,
        agent_connected: bool | None = None,
        phase: str | None = None,
        conditions: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Change a VMI's readiness / agent condition / phase (as virt-handler would) and the VM status."""
        entry = self.store.get(VIRTUAL_MACHINE_INSTANCES, namespace, name)
        if entry is None:
            raise errors.not_found("virtualmachineinstances", "kubevirt.io", name)
        vmi = copy.deepcopy(entry.obj)
        status = vmi.setdefault("status", {})
        now = now_rfc3339()
        old_conditions = status.get("conditions") or []
        if conditions is not None:
            new_conditions = copy.deepcopy(conditions)
        else:
            by_type = {c.get("type"): c for c in old_conditions}
            if ready is not None:
                self.pending_ready.pop((namespace, name), None)
                by_type["Ready"] = _ready_condition(ready, now)
            if agent_connected is not None:
                # KubeVirt removes AgentConnected when the agent goes away; it is never False
                if agent_connected:
                    by_type["AgentConnected"] = _condition("AgentConnected", True, now)
                else:
                    by_type.pop("AgentConnected", None)
            new_conditions = list(by_type.values())
        status["conditions"] = _keep_transition_times(new_conditions, old_conditions)
        if phase is not None:
            status["phase"] = phase
        if status != entry.obj.get("status"):
            self._save(VIRTUAL_MACHINE_INSTANCES, vmi)
            self.refresh_vm_status(namespace, name)
        return vmi

    def set_behaviour(
        self,
        namespace: str,
        name: str,
        ready_after_restart: Readiness | None,
        agent_connected: bool | None = None,
    ) -> None:
        state = self.state(namespace, name)
        state.ready_after_restart = ready_after_restart
        state.agent_after_restart = agent_connected

    def tick(self) -> None:
        """Apply due "ready after N seconds" transitions."""
        if not self.pending_ready:
            return
        now = time.monotonic()
        for key, (when, uid) in list(self.pending_ready.items()):
            if when > now:
                continue
            del self.pending_ready[key]
            vmi = self.vmi(*key)
            if vmi is not None and vmi["metadata"].get("uid") == uid:
                self.set_vmi_status(key[0], key[1], ready=True)


def substitute_parameters(obj: Any, params: dict[str, str]) -> Any:
    """OpenShift template processing: ``${NAME}`` in strings, ``${{NAME}}`` as a JSON value."""
    if isinstance(obj, dict):
        return {k: substitute_parameters(v, params) for k, v in obj.items()}
    if isinstance(obj, list):
        return [substitute_parameters(v, params) for v in obj]
    if isinstance(obj, str):
        for pname, value in params.items():
            whole = "${{" + pname + "}}"
            if obj == whole:
                try:
                    return json.loads(value)
                except ValueError:
                    return value
            obj = obj.replace(whole, value).replace("${" + pname + "}", value)
        return obj
    return obj
