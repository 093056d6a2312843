"""Kubernetes ``Status`` error bodies, shaped like k8s.io/apimachinery/pkg/api/errors.

Every builder mirrors the Go constructor of the same name so that clients see the same
``code``/``reason``/``message``/``details`` a real kube-apiserver would send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# field.ErrorType -> (CauseType used in Status.details.causes, text used in messages)
FIELD_ERROR_TYPES: dict[str, tuple[str, str]] = {
    "required": ("FieldValueRequired", "Required value"),
    "invalid": ("FieldValueInvalid", "Invalid value"),
    "type": ("FieldValueTypeInvalid", "Invalid value"),
    "notsupported": ("FieldValueNotSupported", "Unsupported value"),
    "duplicate": ("FieldValueDuplicate", "Duplicate value"),
    "toolong": ("FieldValueTooLong", "Too long"),
    "toomany": ("FieldValueTooMany", "Too many"),
    "forbidden": ("FieldValueForbidden", "Forbidden"),
    "unknown": ("FieldValueInvalid", "field not declared in schema"),
}

_OMIT = object()


def go_value(value: Any) -> str:
    """Format a bad value roughly like Go's field.Error does (%q for strings, %v for scalars)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class FieldError:
    """One field.Error: a type, the field path and the error body."""

    kind: str  # key of FIELD_ERROR_TYPES
    field: str
    value: Any = _OMIT
    detail: str = ""
    raw_value: str | None = None  # a value already formatted the Go way, e.g. '[]string{"x"}'

    @property
    def cause_type(self) -> str:
        return FIELD_ERROR_TYPES[self.kind][0]

    def body(self) -> str:
        """field.Error.ErrorBody(): '<type>[: <value>][: <detail>]'."""
        text = FIELD_ERROR_TYPES[self.kind][1]
        if self.raw_value is not None:
            text += ": " + self.raw_value
        elif (
            self.kind in ("invalid", "type", "notsupported", "duplicate", "toomany")
            and self.value is not _OMIT
        ):
            text += ": " + go_value(self.value)
        if self.detail:
            text += ": " + self.detail
        return text

    def message(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict[str, str]:
        return {"reason": self.cause_type, "message": self.body(), "field": self.field}


class ApiError(Exception):
    """An error answered as a ``Status`` object with the given HTTP code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.metadata = metadata or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": self.metadata,
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = {k: v for k, v in self.details.items() if v not in (None, "", [], 0)}
        body["code"] = self.code
        return body


def _details(group: str, kind: str, name: str = "") -> dict[str, Any]:
    return {"name": name, "group": group, "kind": kind}


def qualified(resource: str, group: str) -> str:
    """schema.GroupResource.String(): 'virtualmachines.kubevirt.io' or 'pods'."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f"{qualified(resource, group)} {json.dumps(name)} not found",
        _details(group, resource, name),
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f"{qualified(resource, group)} {json.dumps(name)} already exists",
        _details(group, resource, name),
    )


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f"Operation cannot be fulfilled on {qualified(resource, group)} {json.dumps(name)}: {why}",
        _details(group, resource, name),
    )


OBJECT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    """errors.NewInvalid: message aggregates the field errors like utilerrors.Aggregate."""
    messages: list[str] = []
    for err in errors:
        if err.message() not in messages:
            messages.append(err.message())
    agg = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    gk = f"{kind}.{group}" if group else kind
    details = _details(group, kind, name)
    details["causes"] = [e.cause() for e in errors]
    return ApiError(422, "Invalid", f"{gk} {json.dumps(name)} is invalid: {agg}", details)


def generic_unprocessable() -> ApiError:
    """errors.NewGenericServerResponse(422, ...) as used for failed JSON patches."""
    return ApiError(
        422, "Invalid", "the server rejected our request due to an error in our request", {}
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unsupported_media_type(accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def method_not_supported(resource: str, group: str, action: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"{action} is not supported on resources of kind {json.dumps(qualified(resource, group))}",
        {"group": group, "kind": resource},
    )


def method_not_allowed() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )


def route_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def internal(message: str, with_cause: bool = True) -> ApiError:
    if not with_cause:
        return ApiError(500, "", message)
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )


def service_unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"retryAfterSeconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def webhook_denied(webhook: str, errors: list[FieldError]) -> ApiError:
    """A validating admission webhook rejection as KubeVirt's admitters produce it (422 Invalid)."""
    joined = ", ".join(e.detail for e in errors)
    causes = [{"reason": e.cause_type, "message": e.detail, "field": e.field} for e in errors]
    return ApiError(
        422,
        "Invalid",
        f"admission webhook {json.dumps(webhook)} denied the request: {joined}",
        {"causes": causes},
    )
