# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart VMs so a template change takes effect, one batch at a time.

Probe and watchdog changes are not live-updatable: a running VM keeps the old settings
(and carries the RestartRequired condition) until it is restarted; live migration does
not carry them either. A restart goes through KubeVirt's ``restart`` subresource, which
replaces the VMI. A batch counts as done when every VM in it has a *new* VMI (other uid)
whose Ready condition is True; the rollout stops at the first batch that misses
``wait_timeout``, so a broken probe or a missing guest agent takes down at most one batch.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ApiError
from ansible_collections.vmhealth.kvm.plugins.module_utils.k8s_api import resource_path
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt import vm as vmfacts
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.selection import (
    parse_max_unavailable,
)


def _vmi_path(item):
    return resource_path(vmfacts.VM_GROUP_VERSION, vmfacts.VMI_PLURAL, item.namespace, item.name)


def _restart_path(item):
    return resource_path(
        vmfacts.LIFECYCLE_GROUP_VERSION, vmfacts.VM_PLURAL, item.namespace, item.name, "restart"
    )


def batches(items, size):
    """Split ``items`` into consecutive batches of at most ``size``."""
    return [items[start : start + size] for start in range(0, len(items), size)]


class Rollout:
    """Restart ``candidates`` (fleet Items) in batches and wait for each batch to be Ready.

    ``mode`` is ``if_needed`` (one batch holding every candidate) or ``rolling``
    (batches of ``max_unavailable``, a count or a percentage of ``population``, the
    number of running VMs selected).
    """

    def __init__(
        self,
        api,
        pool,
        mode,
        max_unavailable,
        population,
        wait_timeout,
        wait_sleep,
        check_mode=False,
        clock=time.monotonic,
        sleep=time.sleep,
    ):
        self.api = api
        self.pool = pool
        self.mode = mode
        self.max_unavailable = max_unavailable
        self.population = population
        self.wait_timeout = wait_timeout
        self.wait_sleep = wait_sleep
        self.check_mode = check_mode
        self._clock = clock
        self._sleep = sleep

    def run(self, candidates):
        """Restart the candidates; return the rollout summary (also set on each Item)."""
        allowed = []
        for item in candidates:
            blocked = vmfacts.NO_RESTART_STRATEGIES.get(item.run_strategy)
            if blocked:
                item.reason = _join(item.reason, "not restarted: " + blocked)
            elif self.check_mode:
                item.reason = _join(item.reason, "check mode: would be restarted")
            else:
                allowed.append(item)

        size = (
            parse_max_unavailable(self.max_unavailable, max(self.population, 1))
            if self.mode == "rolling"
            else max(len(allowed), 1)
        )
        planned = batches(allowed, size)
        summary = {
            "mode": self.mode,
            "batch_size": size,
            "batches": len(planned),
            "completed_batches": 0,
            "stopped": False,
            "not_ready": [],
        }
        for number, batch in enumerate(planned, start=1):
            not_ready = self._restart_batch(batch)
            if not_ready:
                summary["stopped"] = True
                summary["stopped_at_batch"] = number
                summary["not_ready"] = [i.key for i in not_ready]
                for later in planned[number:]:
                    for item in later:
                        item.reason = _join(
                            item.reason,
                            "not restarted: the rollout stopped because batch {0} did not become Ready".format(
                                number
                            ),
                        )
                break
            summary["completed_batches"] = number
        return summary

    def _restart_batch(self, batch):
        """Restart every VM of the batch, then wait for all of them; return those not Ready."""
        old_uids = dict(zip([i.key for i in batch], self.pool.map(self._vmi_uid, batch)))
        restarted = [item for item in batch if self._restart(item, old_uids[item.key])]
        deadline = self._clock() + self.wait_timeout
        pending = list(restarted)
        while pending:
            states = list(
                self.pool.map(lambda item: self._is_ready(item, old_uids[item.key]), pending)
            )
            pending = [item for item, ready in zip(pending, states) if not ready]
            if not pending or self._clock() >= deadline:
                break
            self._sleep(min(self.wait_sleep, max(0.0, deadline - self._clock())))
        for item in restarted:
            item.ready = item not in pending
        for item in pending:
            item.reason = _join(
                item.reason, "not Ready within {0} s after the restart".format(self.wait_timeout)
            )
        return pending

    def _vmi_uid(self, item):
        try:
            return vmfacts.meta(self.api.get(_vmi_path(item))).get("uid")
        except ApiError:
            return None

    def _restart(self, item, old_uid):
        """Ask KubeVirt to restart one VM; False (with a reason) when it did not."""
        if old_uid is None:
            item.restart_required = False
            item.reason = _join(
                item.reason, "not running any more: the change applies at its next start"
            )
            return False
        try:
            # Not retried on a dropped connection: the restart may have happened already.
            self.api.put(_restart_path(item), {}, retry_disconnect=False)
        except ApiError as exc:
            item.reason = _join(item.reason, "restart refused: {0}".format(exc))
            if exc.status == 409 and "not running" in str(exc):
                item.restart_required = False
            return False
        item.restarted = True
        item.restart_required = False
        return True

    def _is_ready(self, item, old_uid):
        try:
            vmi = self.api.get(_vmi_path(item))
        except ApiError:
            return False  # the old VMI is gone and the new one not there yet
        return vmfacts.meta(vmi).get("uid") != old_uid and vmfacts.condition_true(vmi, "Ready")


def _join(reason, more):
    return "{0}; {1}".format(reason, more) if reason else more
