# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply one template-spec policy to a fleet of KubeVirt VirtualMachines (and Templates).

The engine behind kubevirt_vm_probe and qemu_watchdog's KubeVirt backend:

1. LIST the selected VMs page by page (at most 500 per request, never a per-VM GET);
2. for each VM, let the *policy* compute the desired ``spec.template.spec`` (pure) and diff
   it against the stored one exactly as stored;
3. write only the VMs that differ, with a JSON merge patch of just the managed fields,
   guarded by the ``resourceVersion`` the decision was based on, from a bounded worker
   pool; on 409 re-read, re-plan and retry (bounded);
4. optionally restart the VMs that need it (:mod:`.rollout`).

A policy object provides ``check(vm)`` (raise VmRejected), ``apply(template_spec)``
(mutate a copy to the desired state), ``view(template_spec)`` (the managed part, for diffs)
and ``wants_agent()``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ApiError, VmRejected
from ansible_collections.vmhealth.kvm.plugins.module_utils.k8s_api import resource_path
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt import vm as vmfacts
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.rollout import Rollout

ACTIONS = ("created", "updated", "removed", "unchanged", "failed", "skipped")
#: How often a write is re-planned after a 409 Conflict before the VM is reported failed.
CONFLICT_ATTEMPTS = 5
#: How many VM names a warning lists before it says "and N more".
WARNING_NAMES = 20


def merge_patch(before, after):
    """The RFC 7386 merge patch that turns dict ``before`` into dict ``after``."""
    patch = {name: None for name in before if name not in after}
    for name, value in after.items():
        if name not in before:
            patch[name] = value
        elif before[name] != value:
            old = before[name]
            patch[name] = (
                merge_patch(old, value)
                if isinstance(old, dict) and isinstance(value, dict)
                else value
            )
    return patch


def classify(before_view, after_view):
    """created / updated / removed / unchanged from the managed views before and after."""
    if before_view == after_view:
        return "unchanged"
    if not before_view:
        return "created"
    if not after_view:
        return "removed"
    return "updated"


def plan_template_spec(policy, spec):
    """Return (desired spec, before view, after view, action) for one template spec. Pure."""
    desired = copy.deepcopy(spec)
    policy.apply(desired)
    before, after = policy.view(spec), policy.view(desired)
    return desired, before, after, classify(before, after)


def _names(keys):
    keys = sorted(keys)
    text = ", ".join(keys[:WARNING_NAMES])
    if len(keys) > WARNING_NAMES:
        text += " and {0} more".format(len(keys) - WARNING_NAMES)
    return text


class Item:
    """What the engine keeps per object: small, so memory stays bounded for big fleets."""

    __slots__ = (
        "kind",
        "namespace",
        "name",
        "action",
        "reason",
        "restart_required",
        "restarted",
        "ready",
        "diff",
        "resource_version",
        "run_strategy",
        "running",
        "windows",
        "patch",
    )

    def __init__(self, kind, namespace, name):
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.action = "unchanged"
        self.reason = ""
        self.restart_required = False
        self.restarted = False
        self.ready = None
        self.diff = None
        self.resource_version = None
        self.run_strategy = None
        self.running = False
        self.windows = False
        self.patch = None

    @property
    def key(self):
        return "{0}/{1}".format(self.namespace, self.name)

    def as_result(self):
        result = {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "action": self.action,
            "restart_required": self.restart_required,
            "restarted": self.restarted,
            "reason": self.reason,
        }
        if self.ready is not None:
            result["ready"] = self.ready
        if self.diff is not None:
            result["diff"] = self.diff
        return result


class FleetReconciler:
    """Run a policy over the selected VMs (and Templates); see the module docstring."""

    def __init__(
        self,
        api,
        selection,
        policy,
        check_mode=False,
        diff_mode=False,
        parallel=8,
        templates=False,
        restart="never",
        max_unavailable=1,
        wait_timeout=600,
        wait_sleep=5,
    ):
        self.api = api
        self.selection = selection
        self.policy = policy
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.parallel = parallel
        self.templates = templates
        self.restart = restart
        self.max_unavailable = max_unavailable
        self.wait_timeout = wait_timeout
        self.wait_sleep = wait_sleep
        self.items = []
        self.warnings = []
        self.rollout = None

    # -- planning ---------------------------------------------------------------------

    def _plan_vm(self, vm):
        """Create the Item for one listed VM and return it with its merge patch (or None)."""
        m = vmfacts.meta(vm)
        item = Item("VirtualMachine", m.get("namespace"), m.get("name"))
        item.resource_version = m.get("resourceVersion")
        item.run_strategy = vmfacts.run_strategy(vm)
        item.running = vmfacts.is_running(vm)
        item.windows = vmfacts.is_windows(vm)
        if self.selection.is_excluded(item.namespace, item.name):
            item.action, item.reason = "skipped", "excluded by the exclude option"
            return item
        self._replan(item, vm)
        return item

    def _replan(self, item, vm):
        """(Re)compute action, diff and patch of a VM from its current stored state."""
        item.resource_version = vmfacts.meta(vm).get("resourceVersion")
        try:
            self.policy.check(vm)
        except VmRejected as exc:
            item.action, item.reason, item.patch = "failed", str(exc), None
            return
        spec = vmfacts.template_spec(vm)
        desired, before, after, action = plan_template_spec(self.policy, spec)
        item.action = action
        item.reason = ""
        item.patch = None
        if action != "unchanged":
            item.patch = {"spec": {"template": {"spec": merge_patch(spec, desired)}}}
            if self.diff_mode:
                item.diff = {"before": before, "after": after}
        changed = action != "unchanged"
        item.restart_required = item.running and (
            changed or vmfacts.condition_true(vm, "RestartRequired")
        )

    def _plan_template(self, template):
        m = vmfacts.meta(template)
        item = Item("Template", m.get("namespace"), m.get("name"))
        item.resource_version = m.get("resourceVersion")
        if self.selection.is_excluded(item.namespace, item.name):
            item.action, item.reason = "skipped", "excluded by the exclude option"
            return item
        self._replan_template(item, template)
        return item

    def _replan_template(self, item, template):
        item.resource_version = vmfacts.meta(template).get("resourceVersion")
        objects = copy.deepcopy(template.get("objects") or [])
        befores, afters = {}, {}
        for index, embedded in vmfacts.embedded_vms(template):
            name = vmfacts.meta(embedded).get("name") or "objects[{0}]".format(index)
            try:
                self.policy.check(embedded)
            except VmRejected as exc:
                item.action, item.reason, item.patch = "failed", "{0}: {1}".format(name, exc), None
                return
            desired, before, after, _action = plan_template_spec(
                self.policy, vmfacts.template_spec(embedded)
            )
            objects[index].setdefault("spec", {}).setdefault("template", {})["spec"] = desired
            befores[name], afters[name] = before, after
        if not befores:
            item.action, item.reason, item.patch = (
                "skipped",
                "the Template embeds no VirtualMachine",
                None,
            )
            return
        item.action = classify(
            {k: v for k, v in befores.items() if v}, {k: v for k, v in afters.items() if v}
        )
        item.patch = {"objects": objects} if item.action != "unchanged" else None
        if item.patch and self.diff_mode:
            item.diff = {"before": befores, "after": afters}

    # -- writing ----------------------------------------------------------------------

    def _path(self, item):
        if item.kind == "Template":
            return resource_path(
                vmfacts.TEMPLATE_GROUP_VERSION, vmfacts.TEMPLATE_PLURAL, item.namespace, item.name
            )
        return resource_path(vmfacts.VM_GROUP_VERSION, vmfacts.VM_PLURAL, item.namespace, item.name)

    def _write(self, item):
        """Patch one object; on 409 re-read, re-plan and retry, at most CONFLICT_ATTEMPTS times."""
        path = self._path(item)
        for _attempt in range(CONFLICT_ATTEMPTS):
            body = dict(item.patch)
            # The resourceVersion makes the server refuse the patch (409) if the object
            # changed since we read it, so a decision is never based on stale data.
            body["metadata"] = {"resourceVersion": item.resource_version}
            try:
                self.api.merge_patch(path, body)
                item.patch = None  # written: free it, it can hold a whole Template's objects
                return
            except ApiError as exc:
                if exc.status == 404:
                    item.action, item.reason = "failed", "deleted while the task ran"
                    return
                if exc.status != 409:
                    item.action = "failed"
                    item.reason = "Failed to patch {0} '{1}': {2}".format(item.kind, item.key, exc)
                    return
            try:
                current = self.api.get(path)
            except ApiError as exc:
                item.action, item.reason = (
                    "failed",
                    "Failed to re-read {0} '{1}': {2}".format(item.kind, item.key, exc),
                )
                return
            if item.kind == "Template":
                self._replan_template(item, current)
            else:
                self._replan(item, current)
            if item.patch is None:
                return  # someone else made the same change, or the object now fails a check
        item.action = "failed"
        item.reason = "Failed to patch {0} '{1}': still conflicting after {2} attempts".format(
            item.kind, item.key, CONFLICT_ATTEMPTS
        )

    def _collect(self, pool, collection_path, plan):
        """LIST a collection page by page, plan each object and write those that differ.

        The writes of a page finish before the next page is read, which bounds the number
        of objects held in memory by the page size.
        """
        for page in self.api.list_pages(
            collection_path,
            label_selector=self.selection.label_selector,
            field_selector=self.selection.field_selector,
        ):
            items = [plan(obj) for obj in page]
            self.items.extend(items)
            if not self.check_mode:
                list(pool.map(self._write, [i for i in items if i.patch is not None]))

    # -- warnings ---------------------------------------------------------------------

    def _check_agents(self):
        """Warn about running VMs that got an agent-based probe but have no connected agent."""
        if not self.policy.wants_agent():
            return
        changed = [
            i
            for i in self.items
            if i.kind == "VirtualMachine" and i.action in ("created", "updated")
        ]
        windows = [i.key for i in changed if i.windows]
        if windows:
            self.warnings.append(
                "Windows VMs need qemu-guest-agent installed in the guest (virtio-win's guest-agent MSI, "
                "service QEMU-GA) for this probe to pass: " + _names(windows)
            )
        running = {i.key for i in changed if i.running}
        if not running:
            return
        connected = set()
        path = self.selection.collection_path(vmfacts.VM_GROUP_VERSION, vmfacts.VMI_PLURAL)
        try:
            for page in self.api.list_pages(path, field_selector=self.selection.field_selector):
                for vmi in page:
                    if vmfacts.condition_true(vmi, "AgentConnected"):
                        connected.add(vmfacts.key(vmi))
        except ApiError as exc:
            self.warnings.append(
                "Could not read VirtualMachineInstances to check the guest agent: {0}".format(exc)
            )
            return
        missing = running - connected
        if missing:
            self.warnings.append(
                "qemu-guest-agent is not connected on these running VMs, so their probe will fail "
                "until it is installed and running in the guest: " + _names(missing)
            )

    # -- the whole run ----------------------------------------------------------------

    def run(self):
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            self._collect(
                pool,
                self.selection.collection_path(vmfacts.VM_GROUP_VERSION, vmfacts.VM_PLURAL),
                self._plan_vm,
            )
            if self.selection.name and not any(i.kind == "VirtualMachine" for i in self.items):
                missing = Item("VirtualMachine", self.selection.namespace, self.selection.name)
                missing.action, missing.reason = "failed", "VirtualMachine not found"
                self.items.append(missing)
            if self.templates:
                self._collect(
                    pool,
                    self.selection.collection_path(
                        vmfacts.TEMPLATE_GROUP_VERSION, vmfacts.TEMPLATE_PLURAL
                    ),
                    self._plan_template,
                )
            self._check_agents()
            if self.restart != "never":
                candidates = [
                    i
                    for i in self.items
                    if i.kind == "VirtualMachine" and i.restart_required and i.action != "failed"
                ]
                population = sum(1 for i in self.items if i.kind == "VirtualMachine" and i.running)
                self.rollout = Rollout(
                    self.api,
                    pool,
                    mode=self.restart,
                    max_unavailable=self.max_unavailable,
                    population=population,
                    wait_timeout=self.wait_timeout,
                    wait_sleep=self.wait_sleep,
                    check_mode=self.check_mode,
                ).run(candidates)
        return self.result()

    def result(self):
        counts = dict.fromkeys(ACTIONS, 0)
        for item in self.items:
            counts[item.action] += 1
        counts["restarted"] = sum(1 for i in self.items if i.restarted)
        counts["restart_required"] = sum(1 for i in self.items if i.restart_required)
        changed = (
            any(i.action in ("created", "updated", "removed") for i in self.items)
            or counts["restarted"] > 0
        )
        result = {
            "changed": changed,
            "vms": [i.as_result() for i in self.items],
            "counts": counts,
        }
        if self.rollout is not None:
            result["rollout"] = self.rollout
        if self.diff_mode:
            result["diff"] = [
                {
                    "before_header": "{0} {1}".format(i.kind, i.key),
                    "after_header": "{0} {1}".format(i.kind, i.key),
                    "before": i.diff["before"],
                    "after": i.diff["after"],
                }
                for i in self.items
                if i.diff is not None
            ]
        return result

    def failures(self):
        """Items that failed, and whether the rollout stopped early."""
        failed = [i for i in self.items if i.action == "failed"]
        stopped = bool(self.rollout and self.rollout.get("stopped"))
        return failed, stopped
