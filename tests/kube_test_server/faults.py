"""Injected faults and the request log."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import errors

FAULT_TYPES = ("latency", "conflict", "error", "throttle", "drop")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Fault:
    """Applies to the next ``remaining`` API requests that match method and path regex."""

    id: int
    type: str
    remaining: int
    method: str | None = None
    path_regex: str | None = None
    status: int = 500
    latency: float = 0.0
    retry_after: int = 1
    discovery: bool = False  # also hit discovery requests (off: they are what clients do first)
    # conflict only: a merge patch applied to the object before answering 409, like a concurrent writer
    concurrent_patch: dict[str, Any] | None = None

    def matches(self, method: str, path: str, discovery: bool) -> bool:
        if discovery and not self.discovery:
            return False
        if self.method and self.method.upper() != method:
            return False
        return not self.path_regex or re.search(self.path_regex, path) is not None

    def error(self, resource: str, group: str, name: str) -> errors.ApiError:
        """The Status this fault answers with (not used for latency and drop)."""
        if self.type == "conflict":
            return errors.conflict(resource or "unknown", group, name, errors.OBJECT_MODIFIED)
        if self.type == "throttle":
            return errors.too_many_requests(self.retry_after)
        if self.status == 503:
            return errors.service_unavailable(
                "the server is currently unable to handle the request (injected fault)"
            )
        return errors.ApiError(
            self.status,
            "InternalError",
            "Internal error occurred: injected fault",
            {"causes": [{"message": "injected fault"}]},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "remaining": self.remaining,
            "match": {
                "method": self.method,
                "path_regex": self.path_regex,
                "discovery": self.discovery,
            },
            "status": self.status,
            "latency": self.latency,
            "retry_after": self.retry_after,
            "concurrent_patch": self.concurrent_patch,
        }


class FaultInjector:
    """Thread-safe list of pending faults; the first matching fault is consumed per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: dict[str, Any]) -> Fault:
        """Add a fault from the /_test/faults JSON shape; raises ValueError for a bad spec."""
        ftype = spec.get("type")
        if ftype not in FAULT_TYPES:
            raise ValueError(f"type must be one of {', '.join(FAULT_TYPES)}")
        match = spec.get("match") or {}
        if not isinstance(match, dict):
            raise ValueError("match must be an object")
        count = int(spec.get("count", 1))
        if count < 1:
            raise ValueError("count must be >= 1")
        status = int(spec.get("status") or 500)
        if ftype == "error" and status not in (500, 502, 503, 504):
            raise ValueError("status must be 500, 502, 503 or 504 for type error")
        regex = match.get("path_regex")
        if regex is not None:
            re.compile(regex)
        concurrent = spec.get("concurrent_patch")
        if concurrent is not None and (ftype != "conflict" or not isinstance(concurrent, dict)):
            raise ValueError("concurrent_patch must be an object and needs type conflict")
        with self._lock:
            fault = Fault(
                id=self._next_id,
                type=ftype,
                remaining=count,
                method=match.get("method"),
                path_regex=regex,
                status=status,
                latency=float(spec.get("latency") or 0.0),
                retry_after=int(spec.get("retry_after") or 1),
                discovery=bool(match.get("discovery", False)),
                concurrent_patch=concurrent,
            )
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def take(self, method: str, path: str, discovery: bool) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, discovery):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]


class RequestLog:
    """Every API request (not /_test/ ones) with a monotonically increasing sequence number."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._seq = 0

    def append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)

    @property
    def last_seq(self) -> int:
        return self._seq

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            # seq numbers are dense from the first kept entry, so slice instead of scanning
            if not self._entries:
                return []
            first = self._entries[0]["seq"]
            return [dict(e) for e in self._entries[max(0, seq - first + 1) :]]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def count(self, since: int = 0, **filters: Any) -> int:
        """Count entries after ``since`` whose fields equal the given filters.

        Special filters: ``writes=True`` (POST/PUT/PATCH/DELETE that are not dry runs),
        ``methods=[...]``, ``discovery`` defaults to False (discovery is not counted).
        """
        filters.setdefault("discovery", False)
        writes = filters.pop("writes", False)
        methods: Iterable[str] | None = filters.pop("methods", None)
        n = 0
        for entry in self.since(since):
            if writes and (entry["method"] not in WRITE_METHODS or entry["dry_run"]):
                continue
            if methods is not None and entry["method"] not in methods:
                continue
            if all(entry.get(k) == v for k, v in filters.items() if v is not None):
                n += 1
        return n

    def counts_by_verb(self, since: int = 0, include_discovery: bool = False) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.since(since):
            if entry["discovery"] and not include_discovery:
                continue
            out[entry["verb"]] = out.get(entry["verb"], 0) + 1
        return out
