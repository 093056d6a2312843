"""An in-memory stand-in for KubeApi, for unit tests of the fleet engine and rollout.

It keeps objects by path, applies merge patches with the resourceVersion precondition,
and records every call. HTTP-level behaviour is covered by the integration tests against
the Kubernetes API test server.
"""

import copy
import itertools

from kube_test_server.patch import merge_patch as apply_merge_patch

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ApiError


class FakeApi:
    def __init__(self):
        self.objects = {}
        self.calls = []
        self.rv = itertools.count(100)
        self.conflicts = 0  # 409 for the next N patches, after a concurrent change
        self.on_restart = None

    def add(self, path, obj):
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(next(self.rv))
        self.objects[path] = obj
        return obj

    def writes(self):
        return [c for c in self.calls if c[0] not in ("GET", "LIST")]

    def get(self, path):
        self.calls.append(("GET", path))
        if path not in self.objects:
            raise ApiError("not found", status=404, reason="NotFound")
        return copy.deepcopy(self.objects[path])

    def list_pages(self, path, label_selector=None, field_selector=None, limit=500):
        self.calls.append(("LIST", path))
        items = [
            copy.deepcopy(o) for p, o in sorted(self.objects.items()) if p.rsplit("/", 1)[0] == path
        ]
        if field_selector:
            name = field_selector.split("=", 1)[1]
            items = [o for o in items if o["metadata"]["name"] == name]
        for start in range(0, max(len(items), 1), limit):
            yield items[start : start + limit]

    def merge_patch(self, path, patch):
        self.calls.append(("PATCH", path, copy.deepcopy(patch)))
        if path not in self.objects:
            raise ApiError("not found", status=404)
        if self.conflicts:
            self.conflicts -= 1
            obj = self.objects[path]
            obj.setdefault("metadata", {}).setdefault("labels", {})["touched"] = "yes"
            obj["metadata"]["resourceVersion"] = str(next(self.rv))
        current = self.objects[path]
        wanted_rv = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise ApiError("the object has been modified", status=409, reason="Conflict")
        updated = apply_merge_patch(current, patch)
        updated["metadata"]["resourceVersion"] = str(next(self.rv))
        self.objects[path] = updated
        return copy.deepcopy(updated)

    def put(self, path, body, retry_disconnect=True):
        self.calls.append(("PUT", path))
        if self.on_restart:
            return self.on_restart(path)
        return {}
