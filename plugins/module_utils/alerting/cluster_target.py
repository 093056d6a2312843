# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster targets: one AlertingRule or PrometheusRule object through the Kubernetes API.

One GET decides. Nothing is written when the stored spec and the managed labels already match,
and nothing at all in check mode (not even a server-side dry run). An update is a PUT of the
stored object carrying its resourceVersion, so a concurrent change makes the server answer 409
instead of being overwritten; the module then reads the object again and decides anew, a
bounded number of times. Retries on 429/5xx/dropped connections are KubeApi's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmhealth.kvm.plugins.module_utils.alerting.render import (
    needs_update,
    object_state,
    updated_object,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ApiError, VmHealthError
from ansible_collections.vmhealth.kvm.plugins.module_utils.k8s_api import resource_path

#: Attempts of read-compare-write when the object changes under us (409 Conflict).
CONFLICT_ATTEMPTS = 3
#: Reject fields the schema does not know instead of silently dropping them.
WRITE_QUERY = {"fieldValidation": "Strict"}


class ClusterTarget:
    """Ensure one rule object; ``target`` is a rules.Target with a kind."""

    def __init__(self, api, target, name, namespace, check_mode=False, diff_mode=False):
        self.api = api
        self.target = target
        self.name = name
        self.namespace = namespace
        self.check_mode = check_mode
        self.diff_mode = diff_mode

    @property
    def ref(self):
        return "{0} '{1}/{2}'".format(self.target.kind, self.namespace, self.name)

    def _path(self, name=None):
        return resource_path(self.target.group_version, self.target.plural, self.namespace, name)

    def _get(self):
        try:
            return self.api.get(self._path(self.name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise VmHealthError("Failed to read {0}: {1}".format(self.ref, exc)) from exc

    def _result(self, action, before, after):
        result = {
            "changed": action not in ("unchanged",),
            "action": action,
            "kind": self.target.kind,
            "api_version": self.target.group_version,
            "name": self.name,
            "namespace": self.namespace,
            "object": after,
        }
        if self.diff_mode and result["changed"]:
            result["diff"] = {"before": object_state(before), "after": object_state(after)}
        return result

    def apply(self, desired):
        for _attempt in range(CONFLICT_ATTEMPTS):
            stored = self._get()
            if stored is None:
                if self.check_mode:
                    return self._result("created", None, desired)
                try:
                    created = self.api.request(
                        "POST", self._path(), body=desired, query=WRITE_QUERY
                    )
                except ApiError as exc:
                    if exc.status == 409:  # created meanwhile: decide again
                        continue
                    raise VmHealthError(
                        "Failed to create {0}: {1}{2}".format(
                            self.ref, exc, _hint(exc, self.target)
                        )
                    ) from exc
                return self._result("created", None, created)
            if not needs_update(stored, desired):
                return self._result("unchanged", stored, stored)
            body = updated_object(stored, desired)
            if self.check_mode:
                return self._result("updated", stored, body)
            try:
                updated = self.api.request(
                    "PUT", self._path(self.name), body=body, query=WRITE_QUERY
                )
            except ApiError as exc:
                if exc.status == 409:  # resourceVersion changed under us
                    continue
                raise VmHealthError(
                    "Failed to update {0}: {1}{2}".format(self.ref, exc, _hint(exc, self.target))
                ) from exc
            return self._result("updated", stored, updated)
        raise VmHealthError(
            "Failed to update {0}: it kept changing concurrently ({1} attempts)".format(
                self.ref, CONFLICT_ATTEMPTS
            )
        )

    def remove(self):
        for _attempt in range(CONFLICT_ATTEMPTS):
            stored = self._get()
            if stored is None:
                return self._result("unchanged", None, None)
            if self.check_mode:
                return self._result("removed", stored, None)
            version = (stored.get("metadata") or {}).get("resourceVersion")
            body = {"apiVersion": "v1", "kind": "DeleteOptions"}
            if version:
                body["preconditions"] = {"resourceVersion": version}
            try:
                self.api.request("DELETE", self._path(self.name), body=body)
            except ApiError as exc:
                if exc.status == 404:
                    return self._result("unchanged", None, None)
                if exc.status == 409:
                    continue
                raise VmHealthError("Failed to delete {0}: {1}".format(self.ref, exc)) from exc
            return self._result("removed", stored, None)
        raise VmHealthError(
            "Failed to delete {0}: it kept changing concurrently ({1} attempts)".format(
                self.ref, CONFLICT_ATTEMPTS
            )
        )


def _hint(exc, target):
    """A pointer for the common causes of a failed write."""
    if exc.status == 404:
        return " (is the {0} CRD ({1}) installed on the cluster?)".format(
            target.kind, target.group_version
        )
    return ""
