"""In-memory object storage with a global resourceVersion counter, like etcd behind the API server.

Objects are kept as dicts together with their JSON serialisation, so GET and LIST answer with
pre-serialised bytes (a LIST page of 500 VirtualMachines is one ``b",".join``).
"""

from __future__ import annotations

import base64
import bisect
import datetime
import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from .resources import ResourceType

Key = tuple[str, str]  # (namespace or "", name)


def now_rfc3339() -> str:
    """metav1.Time format: RFC 3339 in UTC with second precision."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class Entry:
    """A stored object and its JSON bytes."""

    obj: dict[str, Any]
    raw: bytes


class Store:
    """All objects of all resources; callers hold :attr:`lock` around compound operations."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.resource_version = 0
        self.epoch = uuid.uuid4().hex[:8]  # changes on reset, so old continue tokens expire
        self._data: dict[ResourceType, dict[Key, Entry]] = {}
        self._sorted: dict[ResourceType, list[Key] | None] = {}

    def clear(self) -> None:
        with self.lock:
            self._data.clear()
            self._sorted.clear()
            self.epoch = uuid.uuid4().hex[:8]

    def next_rv(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def bucket(self, res: ResourceType) -> dict[Key, Entry]:
        return self._data.setdefault(res, {})

    def get(self, res: ResourceType, namespace: str | None, name: str) -> Entry | None:
        return self.bucket(res).get((namespace or "", name))

    def put(self, res: ResourceType, obj: dict[str, Any]) -> Entry:
        """Store ``obj`` (its metadata.resourceVersion must already be set)."""
        meta = obj["metadata"]
        key = (meta.get("namespace", "") if res.namespaced else "", meta["name"])
        bucket = self.bucket(res)
        if key not in bucket:
            self._sorted[res] = None
        entry = Entry(obj, dumps(obj))
        bucket[key] = entry
        return entry

    def remove(self, res: ResourceType, namespace: str | None, name: str) -> Entry | None:
        entry = self.bucket(res).pop((namespace or "", name), None)
        if entry is not None:
            self._sorted[res] = None
        return entry

    def sorted_keys(self, res: ResourceType) -> list[Key]:
        keys = self._sorted.get(res)
        if keys is None:
            keys = sorted(self.bucket(res))
            self._sorted[res] = keys
        return keys

    def keys_after(self, res: ResourceType, start: Key | None, namespace: str | None) -> list[Key]:
        """Keys in etcd order (namespace, name), after ``start``, optionally in one namespace."""
        keys = self.sorted_keys(res)
        lo = bisect.bisect_right(keys, start) if start is not None else 0
        if namespace is not None:
            lo = max(lo, bisect.bisect_left(keys, (namespace, "")))
            hi = bisect.bisect_left(keys, (namespace + "\x00", ""))
            return keys[lo:hi]
        return keys[lo:]

    def count(self, res: ResourceType) -> int:
        return len(self.bucket(res))


def encode_continue(rv: int, start: Key, epoch: str) -> str:
    """An opaque continue token (base64 JSON, like the real one, plus the store epoch)."""
    body = {"v": "meta.k8s.io/v1", "rv": rv, "start": f"{start[0]}/{start[1]}\x00", "e": epoch}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


class ContinueError(ValueError):
    """A continue token that cannot be decoded."""


def decode_continue(token: str) -> tuple[int, Key, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if body.get("v") != "meta.k8s.io/v1":
            raise ValueError("unsupported version")
        ns, _unused, name = body["start"].rstrip("\x00").partition("/")
        return int(body["rv"]), (ns, name), str(body["e"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ContinueError(str(exc)) from None
