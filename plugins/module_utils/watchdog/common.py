# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What qemu_watchdog means on every platform: validated request, backend interface, results.

The module has three backends (KubeVirt, libvirt, Proxmox VE) behind one interface:

* read the current state of a VM (:meth:`WatchdogBackend.read`),
* compute the desired state from it (:meth:`WatchdogBackend.desired`, pure),
* apply it (:meth:`WatchdogBackend.apply`),
* say whether the running VM still needs a restart (:meth:`WatchdogBackend.restart_required`)
  and restart it (:meth:`WatchdogBackend.restart`).

The libvirt and Proxmox backends act on one VM and are driven by :func:`reconcile`; the KubeVirt
backend is a policy of the shared fleet engine (selection, paginated LIST, guarded patches,
rolling restarts), see ``watchdog/kubevirt.py``. Everything here is pure: no API access.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ValidationError, VmRejected

PLATFORMS = ("kubevirt", "libvirt", "proxmox")

#: Watchdog models each platform can configure (``auto`` resolves to one of them).
MODELS = {
    "kubevirt": ("i6300esb", "diag288"),
    "libvirt": ("i6300esb", "ib700", "itco", "diag288"),
    "proxmox": ("i6300esb", "ib700"),
}
ALL_MODELS = ("auto", "i6300esb", "ib700", "itco", "diag288")

#: What the hypervisor does when the guest stops pinging the watchdog.
ACTIONS = {
    "kubevirt": ("reset", "poweroff", "shutdown"),
    "libvirt": ("reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi"),
    "proxmox": ("reset", "shutdown", "poweroff", "pause", "debug", "none"),
}
ALL_ACTIONS = ("reset", "poweroff", "shutdown", "pause", "none", "dump", "inject-nmi", "debug")
#: QEMU's (and KubeVirt's) action when none is configured.
DEFAULT_ACTION = "reset"

#: Panic device models per platform; ``none`` removes the panic devices.
PANIC_MODELS = {
    "kubevirt": ("pvpanic", "hyperv", "isa"),
    "libvirt": ("pvpanic", "hyperv", "isa"),
    "proxmox": (),
}
ALL_PANIC_MODELS = ("pvpanic", "hyperv", "isa", "none")

RESTARTS = {
    "kubevirt": ("never", "if_needed", "rolling"),
    "libvirt": ("never", "if_needed"),
    "proxmox": ("never", "if_needed"),
}

SHUTDOWN_WARNING = (
    "action=shutdown asks the guest to shut down through ACPI: a hung guest (the case a watchdog "
    "exists for) usually cannot react, so the VM keeps hanging. Prefer reset or poweroff."
)

IB700_PROXMOX_REASON = (
    "model: ib700 is refused on Proxmox VE: it is an ISA device, but Proxmox VE gives every "
    "watchdog model a PCI address, so the VM would very likely fail to start. Use i6300esb."
)

#: KubeVirt device names are DNS labels.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

#: Options that only make sense on one platform, with the value meaning "not set".
KUBEVIRT_ONLY = {
    "namespace": None,
    "all_namespaces": False,
    "label_selectors": [],
    "exclude": [],
    "templates": False,
    "kubeconfig": None,
    "context": None,
    "host": None,
    "api_key": None,
    "username": None,
    "password": None,
}
LIBVIRT_ONLY = {"uri": None}
PROXMOX_ONLY = {
    "api_host": None,
    "api_port": None,
    "api_user": None,
    "api_password": None,
    "api_token_id": None,
    "api_token_secret": None,
    "vmid": None,
}
PLATFORM_ONLY = {"kubevirt": KUBEVIRT_ONLY, "libvirt": LIBVIRT_ONLY, "proxmox": PROXMOX_ONLY}


def _is_set(params, option, unset):
    value = params.get(option)
    return value is not None and value != unset


class WatchdogSpec:
    """A validated watchdog request: ``WatchdogSpec.from_params(module.params)``.

    ``model`` may still be ``auto``: backends resolve it per VM (by architecture).
    ``action`` is the effective action (``reset`` when not given) or None with state=absent.
    ``panic`` is a panic model, ``none`` (remove panic devices) or None (leave them alone).
    """

    def __init__(
        self, platform, state, model="auto", action=None, panic=None, force=False, name=None
    ):
        self.platform = platform
        self.state = state
        self.model = model
        self.action = action
        self.panic = panic
        self.force = force
        self.device_name = name

    @property
    def present(self):
        return self.state == "present"

    def warnings(self):
        """Warnings for valid but risky requests."""
        if self.present and self.action == "shutdown":
            return [SHUTDOWN_WARNING]
        return []

    @classmethod
    def from_params(cls, params):
        """Validate the platform-independent options; raise ValidationError naming the field."""
        platform = params.get("platform")
        if platform not in PLATFORMS:
            raise ValidationError("platform: must be one of {0}".format(", ".join(PLATFORMS)))
        state = params.get("state") or "present"
        if state not in ("present", "absent"):
            raise ValidationError("state: must be present or absent")

        for other, options in PLATFORM_ONLY.items():
            if other == platform:
                continue
            for option, unset in options.items():
                if _is_set(params, option, unset):
                    raise ValidationError(
                        "{0}: only used with platform={1}, not platform={2}".format(
                            option, other, platform
                        )
                    )

        model = params.get("model") or "auto"
        if model not in ALL_MODELS:
            raise ValidationError("model: must be one of {0}".format(", ".join(ALL_MODELS)))
        if model != "auto" and model not in MODELS[platform]:
            if platform == "proxmox" and model == "ib700":
                raise ValidationError(IB700_PROXMOX_REASON)
            raise ValidationError(
                "model: {0} is not available on {1}; choose auto or one of {2}".format(
                    model, platform, ", ".join(MODELS[platform])
                )
            )
        if platform == "proxmox" and model == "ib700":
            raise ValidationError(IB700_PROXMOX_REASON)

        action = params.get("action")
        if state == "absent":
            if action is not None:
                raise ValidationError(
                    "action: not used with state=absent (the watchdog is removed)"
                )
        else:
            action = action or DEFAULT_ACTION
            if action not in ACTIONS[platform]:
                raise ValidationError(
                    "action: {0} is not available on {1}; choose one of {2}".format(
                        action, platform, ", ".join(ACTIONS[platform])
                    )
                )

        panic = params.get("panic_device")
        if panic is not None:
            if panic not in ALL_PANIC_MODELS:
                raise ValidationError(
                    "panic_device: must be one of {0}".format(", ".join(ALL_PANIC_MODELS))
                )
            if not PANIC_MODELS[platform]:
                raise ValidationError(
                    "panic_device: {0} has no panic device setting; leave panic_device unset".format(
                        platform
                    )
                )
            if panic != "none" and panic not in PANIC_MODELS[platform]:
                raise ValidationError(
                    "panic_device: {0} is not available on {1}; choose one of {2}".format(
                        panic, platform, ", ".join(PANIC_MODELS[platform] + ("none",))
                    )
                )

        restart = params.get("restart") or "never"
        if restart not in RESTARTS[platform]:
            raise ValidationError(
                "restart: {0} is not available with platform={1}; choose one of {2}".format(
                    restart, platform, ", ".join(RESTARTS[platform])
                )
            )

        force = params.get("force")
        if force is not None and not isinstance(force, bool):
            raise ValidationError("force: must be a boolean")

        name = params.get("watchdog_name")
        if name is not None:
            if platform != "kubevirt":
                raise ValidationError("watchdog_name: only used with platform=kubevirt")
            if len(name) > 63 or not _DNS_LABEL.match(name):
                raise ValidationError(
                    "watchdog_name: {0!r} must be a DNS label (lower-case letters, digits and '-', "
                    "at most 63 characters)".format(name)
                )

        timeout = params.get("shutdown_timeout")
        if timeout is not None and platform == "kubevirt":
            raise ValidationError("shutdown_timeout: only used with platform libvirt or proxmox")
        if timeout is not None and not 1 <= timeout <= 3600:
            raise ValidationError("shutdown_timeout: must be between 1 and 3600 seconds")
        return cls(platform, state, model, action, panic, bool(force), name)


def watchdog_view(model, action):
    """The platform-neutral view of one watchdog device."""
    return {"model": model, "action": action}


def reject_windows(spec, is_windows, what):
    """Refuse a watchdog on a Windows guest unless ``force``: Windows has no i6300esb driver."""
    if spec.present and is_windows and not spec.force:
        raise VmRejected(
            "{0} is a Windows guest: Windows has no driver for the watchdog device, so the "
            "watchdog would never be armed (use panic_device=hyperv and a guest agent probe "
            "instead, or force=true)".format(what)
        )


# -- single-VM backends (libvirt, Proxmox VE) ------------------------------------------------


class Current:
    """What a backend read about one VM.

    ``view`` is the managed part (for diffs and comparisons), ``running`` whether the VM runs,
    ``live`` the managed part of the running configuration (None when unknown or stopped),
    ``raw`` whatever the backend needs to compute and apply the desired state.
    """

    def __init__(self, name, view, running, live=None, raw=None, windows=False, details=None):
        self.name = name
        self.view = view
        self.running = running
        self.live = live
        self.raw = raw
        self.windows = windows
        self.details = details or {}


class WatchdogBackend:
    """The interface of a single-VM backend (libvirt, Proxmox VE)."""

    #: What the result calls the object (``Domain``, ``QemuVM``).
    kind = "VM"

    def read(self):
        """Return the :class:`Current` state of the VM (raise VmHealthError when unreachable)."""
        raise NotImplementedError

    def desired(self, current):
        """Return ``(view, raw)``: the desired managed view and the backend's desired data.

        Pure. Raises VmRejected when this VM cannot take the change.
        """
        raise NotImplementedError

    def apply(self, current, desired_raw):
        """Write the desired state. Returns the new :class:`Current`."""
        raise NotImplementedError

    def restart_required(self, current):
        """Whether the running VM still runs with a watchdog setup other than the stored one."""
        return bool(current.running and current.live is not None and current.live != current.view)

    def restart(self, current):
        """Restart the VM so the stored configuration takes effect. Returns a reason or ''."""
        raise NotImplementedError


def classify(before, after):
    """created / updated / removed / unchanged from the managed views before and after."""
    if before == after:
        return "unchanged"
    if not before:
        return "created"
    if not after:
        return "removed"
    return "updated"


def reconcile(backend, spec, restart="never", check_mode=False, diff_mode=False):
    """Bring one VM to the desired state; return the module result (``vms`` has one entry)."""
    item = {
        "kind": backend.kind,
        "name": None,
        "action": "unchanged",
        "restart_required": False,
        "restarted": False,
        "reason": "",
    }
    current = backend.read()
    item["name"] = current.name
    item.update(current.details)
    try:
        reject_windows(spec, current.windows, "{0} {1}".format(backend.kind, current.name))
        view, raw = backend.desired(current)
    except VmRejected as exc:
        item["action"], item["reason"] = "failed", str(exc)
        return _result([item], diff_mode, None)

    action = classify(current.view, view)
    item["action"] = action
    diff = None
    if action != "unchanged":
        diff = {"before": current.view, "after": view}
        if diff_mode:
            item["diff"] = diff
        if check_mode:
            # What the VM would look like after the write: stored = desired, live unchanged.
            current = Current(current.name, view, current.running, current.live, current.raw)
        else:
            current = backend.apply(current, raw)

    item["restart_required"] = backend.restart_required(current)
    if item["restart_required"]:
        if restart == "if_needed":
            if check_mode:
                item["reason"] = "check mode: would be restarted"
            else:
                reason = backend.restart(current)
                if reason:
                    item["reason"] = reason
                else:
                    item["restarted"] = True
                    item["restart_required"] = False
        else:
            item["reason"] = "running with the previous watchdog configuration until restarted"
    return _result([item], diff_mode, diff if diff_mode else None)


def _result(items, diff_mode, diff):
    counts = dict.fromkeys(("created", "updated", "removed", "unchanged", "failed", "skipped"), 0)
    for item in items:
        counts[item["action"]] += 1
    counts["restarted"] = sum(1 for i in items if i["restarted"])
    counts["restart_required"] = sum(1 for i in items if i["restart_required"])
    result = {
        "changed": any(i["action"] in ("created", "updated", "removed") for i in items)
        or counts["restarted"] > 0,
        "vms": items,
        "counts": counts,
    }
    if diff_mode and diff is not None:
        result["diff"] = [
            {
                "before_header": "{0} {1}".format(items[0]["kind"], items[0]["name"]),
                "after_header": "{0} {1}".format(items[0]["kind"], items[0]["name"]),
                "before": diff["before"],
                "after": diff["after"],
            }
        ]
    return result


def failure_message(result):
    """The fail_json message for a single-VM result, or '' when nothing failed."""
    failed = [i for i in result["vms"] if i["action"] == "failed"]
    if not failed:
        return ""
    return "; ".join("{0} {1}: {2}".format(i["kind"], i["name"], i["reason"]) for i in failed)
