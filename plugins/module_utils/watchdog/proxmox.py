# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu_watchdog's Proxmox VE backend.

Two layers:

* pure option-string work (:func:`parse_watchdog`, :func:`format_watchdog`,
  :func:`pending_views`): the VM option ``watchdog: [[model=]i6300esb|ib700][,action=...]``;
* API access through proxmoxer (:class:`ProxmoxBackend`): find the VM's node in
  ``/cluster/resources``, read its config with pending changes applied, its pending list and
  its status, write the option with the config ``digest`` (so a concurrent edit is never
  overwritten: the write is re-planned instead), and reboot through the API.

Only the API is used, never the files under /etc/pve (they also hold snapshot sections).
A watchdog change on a running VM stays pending until a full stop/start or an API reboot
(a reboot inside the guest does not apply it): the backend compares the desired state with
the *pending* configuration, so a change that is already pending is not written again, and
reports ``restart_required`` while the live value differs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import VmHealthError, VmRejected
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.common import (
    DEFAULT_ACTION,
    Current,
    WatchdogBackend,
)

try:
    from proxmoxer import AuthenticationError, ProxmoxAPI, ResourceException

    HAS_PROXMOXER = True
except ImportError:
    ProxmoxAPI = None
    ResourceException = AuthenticationError = ()
    HAS_PROXMOXER = False

WATCHDOG_KEY = "watchdog"
DEFAULT_MODEL = "i6300esb"
PVE_MODELS = ("i6300esb", "ib700")
PVE_ACTIONS = ("reset", "shutdown", "poweroff", "pause", "debug", "none")
RETRY_STATUSES = frozenset([409, 429, 500, 502, 503, 504])
#: What qemu-server says when the config digest sent with a write no longer matches.
MODIFIED_MESSAGE = "detected modified configuration"
WRITE_ATTEMPTS = 5


def parse_watchdog(value):
    """``{"model", "action"}`` from a watchdog option string; ValueError when malformed.

    The model may be given bare (the default key); it defaults to i6300esb. ``action`` is None
    when not set (QEMU then resets the VM).
    """
    result = {"model": DEFAULT_MODEL, "action": None}
    seen = set()
    for part in str(value).split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, val = part.partition("=")
        if not sep:
            key, val = "model", key
        if key not in ("model", "action"):
            raise ValueError("unknown key {0!r} in {1!r}".format(key, value))
        if key in seen:
            raise ValueError("duplicate key {0!r} in {1!r}".format(key, value))
        seen.add(key)
        allowed = PVE_MODELS if key == "model" else PVE_ACTIONS
        if val not in allowed:
            raise ValueError(
                "{0} {1!r} is not one of {2} in {3!r}".format(key, val, ", ".join(allowed), value)
            )
        result[key] = val
    return result


def format_watchdog(model, action):
    """The option string for a model and action: ``model=i6300esb,action=reset``."""
    text = "model={0}".format(model)
    if action:
        text += ",action={0}".format(action)
    return text


def watchdog_view(value):
    """The managed view of an option value (None or '' means no watchdog)."""
    if not value:
        return {}
    parsed = parse_watchdog(value)
    return {"watchdog": {"model": parsed["model"], "action": parsed["action"] or DEFAULT_ACTION}}


def pending_views(pending):
    """``(live view, stored view)`` of the watchdog from ``GET .../pending`` entries.

    Each entry has ``key`` and optionally ``value`` (live), ``pending`` (new value) and
    ``delete`` (1 or 2: removal pending). The stored view is what the VM gets at its next start.
    """
    entry = next((e for e in pending or [] if e.get("key") == WATCHDOG_KEY), None)
    if entry is None:
        return {}, {}
    live = watchdog_view(entry.get("value"))
    if entry.get("delete"):
        return live, {}
    if "pending" in entry:
        return live, watchdog_view(entry.get("pending"))
    return live, live


def plan_option(current_value, spec):
    """The write for one VM: ``{"watchdog": str}``, ``{"delete": "watchdog"}`` or None.

    ``current_value`` is the option with pending changes applied. Semantically equal values
    (no action vs. action=reset, bare model vs. model=) are not rewritten.
    """
    current = watchdog_view(current_value)
    if spec.present:
        model = DEFAULT_MODEL if spec.model == "auto" else spec.model
        wanted = {"watchdog": {"model": model, "action": spec.action}}
        if current == wanted:
            return None, wanted
        return {WATCHDOG_KEY: format_watchdog(model, spec.action)}, wanted
    if not current:
        return None, {}
    return {"delete": WATCHDOG_KEY}, {}


def is_windows_ostype(ostype):
    """Proxmox VE's Windows OS types: win7..win11, w2k, w2k3, w2k8, wxp, wvista."""
    return bool(ostype) and str(ostype).startswith("w")


# -- API access ---------------------------------------------------------------------------


class ConfigModified(VmHealthError):
    """The config changed between our read and our write (digest mismatch)."""


def _describe(exc):
    """A message from a proxmoxer ResourceException: status, message and per-field errors."""
    errors = getattr(exc, "errors", None)
    text = "{0} {1}".format(
        getattr(exc, "status_code", ""), getattr(exc, "status_message", "")
    ).strip()
    content = getattr(exc, "content", "")
    if content and content not in text:
        text += ": " + str(content).strip()
    if errors:
        text += " ({0})".format(
            "; ".join("{0}: {1}".format(k, str(v).strip()) for k, v in sorted(errors.items()))
        )
    return text


class ProxmoxClient:
    """proxmoxer requests with bounded retries on 409, 429 and 5xx (with back-off)."""

    retries = 5
    backoff_base = 0.5
    backoff_cap = 8.0

    def __init__(self, api, sleep=time.sleep):
        self.api = api
        self._sleep = sleep

    def request(self, method, path, **params):
        attempt = 0
        while True:
            attempt += 1
            try:
                return getattr(self.api(path), method)(**params)
            except ResourceException as exc:
                text = _describe(exc)
                if MODIFIED_MESSAGE in text:
                    raise ConfigModified(text) from None
                if exc.status_code in RETRY_STATUSES and attempt <= self.retries:
                    self._sleep(min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))
                    continue
                if attempt > 1:
                    text += " (after {0} attempts)".format(attempt)
                raise VmHealthError(
                    "Proxmox VE API {0} /{1} failed: {2}".format(method.upper(), path, text)
                ) from None
            except (OSError, ValueError) as exc:
                # requests' ConnectionError is an OSError; a non-JSON answer a ValueError.
                if attempt <= self.retries and method == "get":
                    self._sleep(min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))
                    continue
                raise VmHealthError(
                    "Proxmox VE API {0} /{1} failed: {2}".format(method.upper(), path, exc)
                ) from None


def connect(params, timeout=30):
    """A ProxmoxAPI from the module's options (API token, or password for a ticket)."""
    if not HAS_PROXMOXER:
        raise VmHealthError("proxmoxer (and requests) are required for platform=proxmox")
    kwargs = {
        "port": params.get("api_port") or 8006,
        "user": params["api_user"],
        "verify_ssl": params.get("validate_certs") is not False,
        "timeout": timeout,
    }
    if params.get("api_token_id"):
        kwargs["token_name"] = params["api_token_id"]
        kwargs["token_value"] = params["api_token_secret"]
    else:
        kwargs["password"] = params["api_password"]
    try:
        return ProxmoxAPI(params["api_host"], **kwargs)
    except AuthenticationError as exc:
        raise VmHealthError(
            "Proxmox VE authentication failed for {0}: {1}".format(params["api_user"], exc)
        ) from None
    except (OSError, ValueError, ResourceException) as exc:
        raise VmHealthError(
            "Failed to connect to Proxmox VE at {0}: {1}".format(params["api_host"], exc)
        ) from None


class ProxmoxBackend(WatchdogBackend):
    """One QEMU VM of a Proxmox VE cluster, found by vmid or name."""

    kind = "QemuVM"
    poll_interval = 1.0

    def __init__(self, client, spec, vmid=None, name=None, shutdown_timeout=120, wait_timeout=600):
        self.client = client
        self.spec = spec
        self.vmid = vmid
        self.name = name
        self.shutdown_timeout = shutdown_timeout
        self.wait_timeout = wait_timeout
        self.node = None
        self._clock = time.monotonic

    def locate(self):
        """Find the VM's node (and vmid) in /cluster/resources."""
        resources = self.client.request("get", "cluster/resources", type="vm") or []
        if self.vmid is not None:
            found = [r for r in resources if int(r.get("vmid", -1)) == int(self.vmid)]
            what = "vmid {0}".format(self.vmid)
        else:
            found = [r for r in resources if r.get("name") == self.name]
            what = "name {0!r}".format(self.name)
        if not found:
            raise VmHealthError("No VM with {0} in the cluster".format(what))
        if len(found) > 1:
            raise VmHealthError(
                "name: {0} VMs are named {1!r} (vmid {2}); use vmid".format(
                    len(found), self.name, ", ".join(str(r.get("vmid")) for r in found)
                )
            )
        resource = found[0]
        if resource.get("type") != "qemu":
            raise VmHealthError(
                "{0} is a {1} guest, not a QEMU VM: it has no watchdog option".format(
                    what, resource.get("type")
                )
            )
        self.node, self.vmid = resource["node"], int(resource["vmid"])
        return resource

    def _path(self, *parts):
        return "/".join(["nodes", self.node, "qemu", str(self.vmid)] + list(parts))

    def read(self):
        if self.node is None:
            self.locate()
        config = self.client.request("get", self._path("config")) or {}
        pending = self.client.request("get", self._path("pending")) or []
        status = self.client.request("get", self._path("status", "current")) or {}
        try:
            live, _stored = pending_views(pending)
            config_view = watchdog_view(config.get(WATCHDOG_KEY))
        except ValueError as exc:
            raise VmHealthError(
                "VM {0}: cannot parse its watchdog option: {1}".format(self.vmid, exc)
            ) from None
        running = status.get("status") == "running"
        return Current(
            config.get("name") or self.name or str(self.vmid),
            config_view,
            running,
            live=live if running else None,
            raw={"value": config.get(WATCHDOG_KEY), "digest": config.get("digest")},
            windows=is_windows_ostype(config.get("ostype")),
            details={"vmid": self.vmid, "node": self.node},
        )

    def desired(self, current):
        try:
            write, wanted = plan_option(current.raw["value"], self.spec)
        except ValueError as exc:
            raise VmRejected("cannot parse its watchdog option: {0}".format(exc)) from None
        return wanted, write

    def apply(self, current, desired_raw):
        """PUT the option with the digest; on a concurrent change re-read and re-plan."""
        write = desired_raw
        for _attempt in range(WRITE_ATTEMPTS):
            if write is None:
                return current
            body = dict(write)
            if current.raw.get("digest"):
                body["digest"] = current.raw["digest"]
            try:
                self.client.request("put", self._path("config"), **body)
                return self.read()
            except ConfigModified:
                current = self.read()
                _view, write = self.desired(current)
        raise VmHealthError(
            "Failed to update VM {0}: its config kept changing ({1} attempts)".format(
                self.vmid, WRITE_ATTEMPTS
            )
        )

    def restart(self, current):
        """Reboot through the API (applies pending changes) and wait for the task."""
        try:
            upid = self.client.request(
                "post", self._path("status", "reboot"), timeout=self.shutdown_timeout
            )
            if not upid:
                return ""
            deadline = self._clock() + self.wait_timeout
            while True:
                task = self.client.request(
                    "get", "nodes/{0}/tasks/{1}/status".format(self.node, upid)
                )
                if (task or {}).get("status") == "stopped":
                    if task.get("exitstatus") != "OK":
                        return "reboot task failed: {0}".format(task.get("exitstatus"))
                    return ""
                if self._clock() >= deadline:
                    return "reboot task not finished within {0} s".format(self.wait_timeout)
                time.sleep(self.poll_interval)
        except VmHealthError as exc:
            return "reboot failed: {0}".format(exc)
