"""API semantics (independent of HTTP): discovery, CRUD, patch, selectors, pagination, dry run.

:meth:`ApiCore.handle` takes a parsed request and returns ``(status, body bytes, headers)``;
failures are raised as :class:`errors.ApiError` and turned into ``Status`` bodies by the caller.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

import yaml

from . import errors, kubevirt, resources
from .errors import ApiError, FieldError
from .kubevirt import KubeVirtController
from .patch import PatchApplyError, PatchFormatError, apply_merge, json_patch, merge_patch
from .resources import (
    BUILTIN_SCHEMAS,
    NAMESPACES,
    PODS,
    RESOURCES,
    TEMPLATES,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
    ResourceType,
    RouteError,
    RouteTarget,
)
from .schema import SchemaSet, StructuralValidator, builtin_validator
from .selectors import (
    SelectorError,
    fields_match,
    label_value_errors,
    labels_match,
    parse_field_selector,
    parse_label_selector,
    qualified_name_errors,
)
from .store import (
    ContinueError,
    Entry,
    Store,
    decode_continue,
    dumps,
    encode_continue,
    new_uid,
    now_rfc3339,
)

LOG = logging.getLogger("kube_test_server")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
CONTINUE_EXPIRED_MSG = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list."
)
GENERATE_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")
FIELD_VALIDATION_VALUES = ("", "Ignore", "Warn", "Strict")


@dataclass
class ApiRequest:
    """A parsed HTTP request to the API (not /_test/)."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str = ""
    body: bytes = b""


@dataclass
class RequestInfo:
    """What the request is, for the request log."""

    verb: str = ""
    discovery: bool = False
    resource: str = ""
    group: str = ""
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    dry_run: bool = False
    target: RouteTarget | None = None
    route_error: bool = False


JSON = {"Content-Type": "application/json"}


def _one(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def _is_true(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "t")


def _options_error(kind: str, field_name: str, raw_value: str, supported: list[str]) -> ApiError:
    detail = "supported values: " + ", ".join(json.dumps(v) for v in supported)
    err = FieldError("notsupported", field_name, detail=detail, raw_value=raw_value)
    return errors.invalid(f"{kind}Options", "meta.k8s.io", "", [err])


def _go_string_slice(values: list[str]) -> str:
    return "[]string{" + ", ".join(json.dumps(v) for v in values) + "}"


class ApiCore:
    """The API server's behaviour over a :class:`Store`."""

    def __init__(
        self,
        schemas: SchemaSet,
        validate_template_objects: bool = True,
        webhooks: bool = True,
        server_address: str = "127.0.0.1:0",
    ) -> None:
        self.store = Store()
        self.schemas = schemas
        self.validate_template_objects = validate_template_objects
        self.webhooks = webhooks
        self.server_address = server_address
        self.kubevirt = KubeVirtController(self.store)
        self._builtin: dict[str, StructuralValidator] = {
            key: builtin_validator(schema, key) for key, schema in BUILTIN_SCHEMAS.items()
        }
        self.reset()

    # ------------------------------------------------------------------ setup
    def reset(self) -> None:
        with self.store.lock:
            self.store.clear()
            self.kubevirt.reset()
            for name in DEFAULT_NAMESPACES:
                self.ensure_namespace(name)

    def ensure_namespace(self, name: str) -> None:
        with self.store.lock:
            if self.store.get(NAMESPACES, None, name) is None:
                self.create(NAMESPACES, None, {"metadata": {"name": name}}, {})

    def validator_for(self, res: ResourceType) -> StructuralValidator:
        if res.crd:
            validator = self.schemas.get(res.schema_key)
            if validator is None:  # pragma: no cover - every CRD has a fallback
                raise errors.internal(f"no schema for {res.group_resource}")
            return validator
        return self._builtin[res.schema_key]

    # ------------------------------------------------------------- classification
    def classify(self, req: ApiRequest) -> RequestInfo:
        """Work out verb/resource for logging and fault matching (never raises)."""
        parts = [p for p in req.path.split("/") if p]
        info = RequestInfo()
        if not parts or parts[0] in ("version", "openapi", "healthz", "livez", "readyz"):
            info.discovery = True
            info.verb = "get"
            return info
        if parts[0] in ("api", "apis") and (
            len(parts) == 1
            or (parts[0] == "api" and len(parts) == 2)
            or (parts[0] == "apis" and len(parts) <= 3)
        ):
            info.discovery = True
            info.verb = "get"
            return info
        try:
            target = resources.parse_resource_path(parts) if parts[0] in ("api", "apis") else None
        except (RouteError, IndexError):
            target = None
        if target is None or target.resource is None:
            info.route_error = True
            info.verb = req.method.lower()
            return info
        info.target = target
        res = target.resource
        info.resource, info.group = res.plural, res.group
        if target.kubevirt_action:
            info.group = resources.SUBRESOURCES_GROUP
        info.namespace, info.name = target.namespace, target.name
        info.subresource = target.subresource or target.kubevirt_action
        method = req.method
        if method in ("GET", "HEAD"):
            if target.name:
                info.verb = "get"
            else:
                info.verb = "watch" if _is_true(_one(req.query, "watch")) else "list"
        elif method == "POST":
            info.verb = "create"
        elif method == "PUT":
            info.verb = "update"
        elif method == "PATCH":
            info.verb = "patch"
        elif method == "DELETE":
            info.verb = "delete" if target.name else "deletecollection"
        else:
            info.verb = method.lower()
        info.dry_run = "dryRun" in req.query
        if (target.kubevirt_action or method == "DELETE") and req.body and not info.dry_run:
            with contextlib.suppress(ValueError, AttributeError):
                info.dry_run = bool(json.loads(req.body).get("dryRun"))
        return info

    # ------------------------------------------------------------------ dispatch
    def handle(self, req: ApiRequest, info: RequestInfo) -> tuple[int, bytes, dict[str, str]]:
        parts = [p for p in req.path.split("/") if p]
        if info.discovery:
            return self._discovery(req, parts)
        if info.target is None:
            raise errors.route_not_found()
        target = info.target
        res = target.resource
        assert res is not None
        method = req.method
        with self.store.lock:
            self.kubevirt.tick()
            if target.kubevirt_action:
                if method != "PUT":
                    raise errors.method_not_allowed()
                body = self._decode_json(req.body, allow_empty=True) or {}
                if not isinstance(body, dict):
                    raise errors.bad_request("Can not unmarshal Request body to struct")
                self.kubevirt.action(
                    target.namespace or "", target.name or "", target.kubevirt_action, body
                )
                return 202, b"", {}
            if method in ("GET", "HEAD"):
                if target.name:
                    return 200, self._get(res, target.namespace, target.name), JSON
                if info.verb == "watch":
                    raise ApiError(
                        405,
                        "MethodNotAllowed",
                        "watch is not supported by this test server (a test double)",
                        {},
                    )
                return 200, self.list_bytes(res, target.namespace, req.query), JSON
            if method == "POST":
                if target.name:
                    raise errors.method_not_supported(res.plural, res.group, "create")
                obj = self._decode_object(req.body, req.content_type)
                status, result = self.create(res, target.namespace, obj, req.query)
                return status, dumps(result), JSON
            if not target.name:
                if method == "DELETE":
                    return (
                        200,
                        dumps(self.delete_collection(res, target.namespace, req.query, req.body)),
                        JSON,
                    )
                raise errors.method_not_supported(res.plural, res.group, method.lower())
            if method == "PUT":
                obj = self._decode_object(req.body, req.content_type)
                result = self.update(
                    res, target.namespace, target.name, obj, req.query, target.subresource
                )
                return 200, dumps(result), JSON
            if method == "PATCH":
                status, result = self.patch(
                    res,
                    target.namespace,
                    target.name,
                    req.body,
                    req.content_type,
                    req.query,
                    target.subresource,
                )
                return status, dumps(result), JSON
            if method == "DELETE":
                if target.subresource:
                    raise errors.method_not_supported(res.plural, res.group, "delete")
                return (
                    200,
                    dumps(self.delete(res, target.namespace, target.name, req.query, req.body)),
                    JSON,
                )
        raise errors.method_not_allowed()

    def _discovery(self, req: ApiRequest, parts: list[str]) -> tuple[int, bytes, dict[str, str]]:
        if req.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        doc: dict[str, Any] | None = None
        if parts == ["version"]:
            doc = resources.VERSION_INFO
        elif parts in (["healthz"], ["livez"], ["readyz"]):
            return 200, b"ok", {"Content-Type": "text/plain; charset=utf-8"}
        elif parts == ["api"]:
            doc = resources.api_versions(self.server_address)
        elif parts == ["api", "v1"]:
            doc = resources.api_resource_list("", "v1")
        elif parts == ["apis"]:
            # the aggregated discovery Accept (apidiscovery.k8s.io/v2) is ignored: clients fall back
            doc = resources.api_group_list()
        elif len(parts) == 2 and parts[0] == "apis" and parts[1] in resources.GROUP_VERSIONS:
            doc = {"kind": "APIGroup", "apiVersion": "v1", **resources.api_group(parts[1])}
        elif len(parts) == 3 and parts[0] == "apis":
            doc = resources.api_resource_list(parts[1], parts[2])
        if doc is None:
            raise errors.route_not_found()
        return 200, dumps(doc), JSON

    # ------------------------------------------------------------------ decoding
    @staticmethod
    def _decode_json(body: bytes, allow_empty: bool = False) -> Any:
        if not body.strip():
            if allow_empty:
                return None
            raise errors.bad_request("the body of the request was empty")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise errors.bad_request(
                f"couldn't get version/kind; json parse error: {exc}"
            ) from None

    def _decode_object(self, body: bytes, content_type: str) -> dict[str, Any]:
        ctype = content_type.split(";")[0].strip().lower()
        if ctype in ("application/yaml", "application/apply-patch+yaml"):
            try:
                obj = yaml.safe_load(body)
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error converting YAML to JSON: {exc}") from None
        elif ctype in ("", "application/json", "*/*"):
            obj = self._decode_json(body)
        else:
            raise errors.unsupported_media_type(["application/json", "application/yaml"])
        if not isinstance(obj, dict):
            raise errors.bad_request(
                "Object 'Kind' is missing in the request body (it is not a JSON object)"
            )
        return obj

    @staticmethod
    def _check_type_meta(res: ResourceType, obj: dict[str, Any]) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind is not None and kind != res.kind:
            raise errors.bad_request(
                f"{kind} in version {json.dumps(res.version)} cannot be handled as a {res.kind}: "
                f"the kind in the body ({kind}) does not match the resource ({res.kind})"
            )
        if api_version is not None and api_version != res.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({res.api_version})"
            )
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = {}
        elif not isinstance(meta, dict):
            raise errors.bad_request(
                f"{res.kind} in version {json.dumps(res.version)} cannot be handled as a {res.kind}: "
                "json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta"
            )

    def _dry_run(
        self, query: dict[str, list[str]], kind: str, extra: list[str] | None = None
    ) -> bool:
        values = list(query.get("dryRun", [])) + list(extra or [])
        if any(v != "All" for v in values):
            raise _options_error(kind, "dryRun", _go_string_slice(values), ["All"])
        validation = _one(query, "fieldValidation")
        if validation is not None and validation not in FIELD_VALIDATION_VALUES:
            raise _options_error(
                kind, "fieldValidation", json.dumps(validation), ["Ignore", "Strict", "Warn"]
            )
        return bool(values)

    # ------------------------------------------------------------------ validation
    def _metadata_errors(self, res: ResourceType, obj: dict[str, Any]) -> list[FieldError]:
        meta = obj["metadata"]
        errs: list[FieldError] = []
        name = meta.get("name")
        if isinstance(name, str) and name:
            pattern, limit, msg = (
                (DNS1123_LABEL, 63, LABEL_MSG)
                if res is NAMESPACES
                else (DNS1123_SUBDOMAIN, 253, SUBDOMAIN_MSG)
            )
            if len(name) > limit:
                errs.append(
                    FieldError(
                        "invalid", "metadata.name", name, f"must be no more than {limit} characters"
                    )
                )
            if not pattern.match(name):
                errs.append(FieldError("invalid", "metadata.name", name, msg))
        for section, check_values in (("labels", True), ("annotations", False)):
            mapping = meta.get(section)
            if not isinstance(mapping, dict):
                continue
            for key, value in mapping.items():
                for msg in qualified_name_errors(str(key)):
                    errs.append(FieldError("invalid", f"metadata.{section}", key, msg))
                if check_values and isinstance(value, str):
                    for msg in label_value_errors(value):
                        errs.append(FieldError("invalid", f"metadata.{section}", value, msg))
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
            if size > 262144:
                errs.append(
                    FieldError(
                        "toolong",
                        "metadata.annotations",
                        detail="may not be more than 262144 bytes",
                    )
                )
        return errs

    def _template_object_errors(self, template: dict[str, Any]) -> list[FieldError]:
        params = {
            p["name"]: str(p["value"])
            for p in template.get("parameters") or []
            if isinstance(p, dict) and isinstance(p.get("name"), str) and p.get("value") is not None
        }
        vm_validator = self.validator_for(VIRTUAL_MACHINES)
        errs: list[FieldError] = []
        for index, embedded in enumerate(template.get("objects") or []):
            if not isinstance(embedded, dict) or embedded.get("kind") != "VirtualMachine":
                continue
            if not str(embedded.get("apiVersion", "")).startswith("kubevirt.io/"):
                continue
            candidate = kubevirt.substitute_parameters(copy.deepcopy(embedded), params)
            vm_validator.prepare(candidate)
            errs.extend(vm_validator.validate(candidate, prefix=f"objects[{index}]"))
        return errs

    def _admit(self, res: ResourceType, obj: dict[str, Any], status_only: bool = False) -> None:
        """Schema + metadata validation (422 Invalid), then the validating webhooks."""
        validator = self.validator_for(res)
        validator.prepare(obj)
        errs = self._metadata_errors(res, obj) + validator.validate(obj)
        if res is TEMPLATES and self.validate_template_objects:
            errs.extend(self._template_object_errors(obj))
        if errs:
            raise errors.invalid(res.kind, res.group, obj["metadata"].get("name", ""), errs)
        if self.webhooks and not status_only:
            kubevirt.admit(res.kind, obj)

    def concurrent_patch(self, target: RouteTarget | None, patch: dict[str, Any]) -> None:
        """Merge-patch the object a request addresses, as another client would (conflict faults)."""
        if target is None or target.resource is None or not target.name:
            return
        with self.store.lock:
            try:
                body = dumps(patch)
                ctype = "application/merge-patch+json"
                self.patch(target.resource, target.namespace, target.name, body, ctype, {})
            except ApiError as err:
                LOG.warning("concurrent_patch of %s failed: %s", target.name, err.message)

    # ------------------------------------------------------------------ reads
    def _get(self, res: ResourceType, namespace: str | None, name: str) -> bytes:
        entry = self.store.get(res, namespace, name)
        if entry is None:
            raise errors.not_found(res.plural, res.group, name)
        return entry.raw

    def get_object(
        self, res: ResourceType, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        with self.store.lock:
            self.kubevirt.tick()
            entry = self.store.get(res, namespace, name)
            return copy.deepcopy(entry.obj) if entry else None

    def _selectors(
        self, res: ResourceType, query: dict[str, list[str]]
    ) -> tuple[list[Any], list[Any]]:
        try:
            label_reqs = parse_label_selector(_one(query, "labelSelector") or "")
            field_reqs = parse_field_selector(_one(query, "fieldSelector") or "")
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        supported = res.supported_field_labels()
        for req in field_reqs:
            if req.field not in supported:
                raise errors.bad_request(f"field label not supported: {req.field}")
        return label_reqs, field_reqs

    def _matching(
        self,
        res: ResourceType,
        namespace: str | None,
        query: dict[str, list[str]],
        start: Any = None,
    ) -> list[Entry]:
        label_reqs, field_reqs = self._selectors(res, query)
        bucket = self.store.bucket(res)
        out = []
        for key in self.store.keys_after(res, start, namespace):
            entry = bucket[key]
            meta = entry.obj["metadata"]
            if label_reqs and not labels_match(label_reqs, meta.get("labels")):
                continue
            if field_reqs and not fields_match(field_reqs, res.field_getter(entry.obj)):
                continue
            out.append(entry)
        return out

    def list_bytes(
        self, res: ResourceType, namespace: str | None, query: dict[str, list[str]]
    ) -> bytes:
        limit_text = _one(query, "limit")
        try:
            limit = int(limit_text) if limit_text else 0
        except ValueError:
            raise errors.bad_request(
                f"limit: Invalid value: {json.dumps(limit_text)}: must be an integer"
            ) from None
        token = _one(query, "continue")
        start = None
        list_rv = self.store.resource_version
        if token:
            try:
                token_rv, start, epoch = decode_continue(token)
            except ContinueError as exc:
                raise errors.bad_request(f"continue key is not valid: {exc}") from None
            if epoch != self.store.epoch:
                raise errors.expired(CONTINUE_EXPIRED_MSG)
            list_rv = token_rv
        selected = self._matching(res, namespace, query, start)
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if limit > 0 and len(selected) > limit:
            page = selected[:limit]
            last = page[-1].obj["metadata"]
            key = (last.get("namespace", "") if res.namespaced else "", last["name"])
            meta["continue"] = encode_continue(list_rv, key, self.store.epoch)
            # like etcd3: the remaining count is only known when no selector filters the list
            if not _one(query, "labelSelector") and not _one(query, "fieldSelector"):
                meta["remainingItemCount"] = len(selected) - limit
            selected = page
        if res.crd or res is TEMPLATES:
            items = b",".join(e.raw for e in selected)
        else:  # typed lists of built-in kinds carry no kind/apiVersion on their items
            items = b",".join(
                dumps({k: v for k, v in e.obj.items() if k not in ("kind", "apiVersion")})
                for e in selected
            )
        head = dumps({"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta})
        return head[:-1] + b',"items":[' + items + b"]}"

    # ------------------------------------------------------------------ create
    def create(
        self,
        res: ResourceType,
        namespace: str | None,
        obj: dict[str, Any],
        query: dict[str, list[str]],
    ) -> tuple[int, dict[str, Any]]:
        dry_run = self._dry_run(query, "Create")
        obj = copy.deepcopy(obj)
        self._check_type_meta(res, obj)
        meta = obj["metadata"]
        if res.namespaced:
            body_ns = meta.get("namespace")
            if namespace is None:
                namespace = body_ns or "default"
            elif body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
            if self.store.get(NAMESPACES, None, namespace) is None:
                raise errors.not_found("namespaces", "", namespace)
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise errors.internal(
                "resourceVersion should not be set on objects to be created", with_cause=False
            )
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(
                    secrets.choice(GENERATE_NAME_CHARS) for _unused in range(5)
                )
            else:
                err = FieldError(
                    "required", "metadata.name", detail="name or generateName is required"
                )
                raise errors.invalid(res.kind, res.group, "", [err])
        name = meta["name"]
        # server-owned fields
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
        ):
            meta.pop(key, None)
        meta.pop("generation", None)
        if res.has_status:
            obj.pop("status", None)
        self._admit(res, obj)
        if self.store.get(res, namespace if res.namespaced else None, name) is not None:
            raise errors.already_exists(res.plural, res.group, name)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now_rfc3339()
        if res.tracks_generation:
            meta["generation"] = 1
        self._server_defaults(res, obj)
        if res is VIRTUAL_MACHINE_INSTANCES:
            # a VMI created directly (not from a VM) starts with the default readiness
            obj["status"] = self.kubevirt.initial_vmi_status()
        if res is VIRTUAL_MACHINES:
            self.kubevirt.reconcile(obj, created=True, dry_run=dry_run)
        if dry_run:
            return 201, obj
        meta["resourceVersion"] = self.store.next_rv()
        self.store.put(res, obj)
        return 201, copy.deepcopy(obj)

    @staticmethod
    def _server_defaults(res: ResourceType, obj: dict[str, Any]) -> None:
        if res is NAMESPACES:
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj[
                "metadata"
            ]["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        elif res is PODS:
            obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})

    # ------------------------------------------------------------------ update / patch
    def update(
        self,
        res: ResourceType,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        query: dict[str, list[str]],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        dry_run = self._dry_run(query, "Update")
        obj = copy.deepcopy(obj)
        self._check_type_meta(res, obj)
        self._check_name_namespace(res, obj, namespace, name)
        entry = self.store.get(res, namespace, name)
        if entry is None:
            raise errors.not_found(res.plural, res.group, name)
        return self._commit_update(res, entry, obj, dry_run, subresource)

    @staticmethod
    def _check_name_namespace(
        res: ResourceType, obj: dict[str, Any], namespace: str | None, name: str
    ) -> None:
        meta = obj["metadata"]
        if meta.get("name") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the URL ({name})"
            )
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)

    def _commit_update(
        self,
        res: ResourceType,
        entry: Entry,
        new: dict[str, Any],
        dry_run: bool,
        subresource: str | None,
    ) -> dict[str, Any]:
        old = entry.obj
        old_meta, meta = old["metadata"], new["metadata"]
        name = old_meta["name"]
        rv = meta.get("resourceVersion")
        if rv and rv != old_meta.get("resourceVersion"):
            raise errors.conflict(res.plural, res.group, name, errors.OBJECT_MODIFIED)
        if meta.get("uid") and meta["uid"] != old_meta.get("uid"):
            raise errors.conflict(
                res.plural,
                res.group,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old_meta.get('uid')}",
            )
        if subresource == "status":
            result = copy.deepcopy(old)
            if new.get("status") is not None:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result = new
            for key in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ):
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            meta.pop("managedFields", None)
            meta.pop("generation", None)
            if res.has_status or res is NAMESPACES:
                if old.get("status") is not None:
                    result["status"] = copy.deepcopy(old["status"])
                else:
                    result.pop("status", None)
        result["metadata"]["resourceVersion"] = old_meta.get("resourceVersion")
        self._admit(res, result, status_only=subresource == "status")
        if res.tracks_generation and "generation" in old_meta:
            changed = _content(result) != _content(old)
            result["metadata"]["generation"] = old_meta["generation"] + (1 if changed else 0)
        if res is VIRTUAL_MACHINES and subresource != "status":
            self.kubevirt.reconcile(result, created=False, dry_run=dry_run)
        if result == old:
            return copy.deepcopy(
                old
            )  # a no-op write is not persisted and keeps its resourceVersion
        if dry_run:
            return result
        if old_meta.get("deletionTimestamp") and not result["metadata"].get("finalizers"):
            self._remove(res, old, orphan=False)
            return result
        result["metadata"]["resourceVersion"] = self.store.next_rv()
        self.store.put(res, result)
        if res is VIRTUAL_MACHINE_INSTANCES:
            self.kubevirt.refresh_vm_status(result["metadata"]["namespace"], name)
        return copy.deepcopy(result)

    def patch(
        self,
        res: ResourceType,
        namespace: str | None,
        name: str,
        body: bytes,
        content_type: str,
        query: dict[str, list[str]],
        subresource: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        ctype = content_type.split(";")[0].strip().lower()
        if ctype not in res.patch_types:
            raise errors.unsupported_media_type(res.patch_types)
        dry_run = self._dry_run(query, "Patch")
        entry = self.store.get(res, namespace, name)
        if ctype == "application/apply-patch+yaml":
            return self._apply(res, namespace, name, body, query, entry, dry_run, subresource)
        if entry is None:
            raise errors.not_found(res.plural, res.group, name)
        patch_doc = self._decode_json(body)
        current = copy.deepcopy(entry.obj)
        if ctype == "application/json-patch+json":
            try:
                new = json_patch(current, patch_doc)
            except PatchFormatError as exc:
                raise errors.bad_request(str(exc)) from None
            except PatchApplyError:
                # the API server hides the json-patch error behind a generic 422
                raise errors.generic_unprocessable() from None
        else:  # merge patch; strategic merge on built-in kinds is treated as a merge patch
            if not isinstance(patch_doc, dict):
                raise errors.bad_request(
                    "json: cannot unmarshal array into Go value of type map[string]interface {}"
                )
            new = merge_patch(current, patch_doc)
        if not isinstance(new, dict):
            raise errors.generic_unprocessable()
        self._check_type_meta(res, new)
        self._check_name_namespace(res, new, namespace, name)
        return 200, self._commit_update(res, entry, new, dry_run, subresource)

    def _apply(
        self,
        res: ResourceType,
        namespace: str | None,
        name: str,
        body: bytes,
        query: dict[str, list[str]],
        entry: Entry | None,
        dry_run: bool,
        subresource: str | None,
    ) -> tuple[int, dict[str, Any]]:
        """Server-side apply, simplified: create if missing, else deep-merge maps and replace lists.

        Field ownership and conflicts between managers are not modelled.
        """
        manager = _one(query, "fieldManager")
        if not manager:
            err = FieldError("required", "fieldManager", detail="is required for apply patch")
            raise errors.invalid("PatchOptions", "meta.k8s.io", "", [err])
        applied = self._decode_object(body, "application/apply-patch+yaml")
        self._check_type_meta(res, applied)
        self._check_name_namespace(res, applied, namespace, name)
        if entry is None:
            if subresource:
                raise errors.not_found(res.plural, res.group, name)
            create_query = {k: v for k, v in query.items() if k != "fieldManager"}
            return self.create(res, namespace, applied, create_query)
        new = apply_merge(copy.deepcopy(entry.obj), applied)
        return 200, self._commit_update(res, entry, new, dry_run, subresource)

    # ------------------------------------------------------------------ delete
    def _delete_options(
        self, query: dict[str, list[str]], body: bytes
    ) -> tuple[bool, dict[str, Any]]:
        options = self._decode_json(body, allow_empty=True) or {}
        if not isinstance(options, dict):
            raise errors.bad_request(
                "json: cannot unmarshal into Go value of type v1.DeleteOptions"
            )
        body_dry = options.get("dryRun") or []
        dry_run = self._dry_run(query, "Delete", list(body_dry))
        policy = _one(query, "propagationPolicy") or options.get("propagationPolicy")
        if policy is not None and policy not in PROPAGATION_POLICIES:
            raise _options_error(
                "Delete",
                "propagationPolicy",
                json.dumps(policy),
                ["Foreground", "Background", "Orphan", "nil"],
            )
        orphan = (
            policy == "Orphan"
            or _is_true(_one(query, "orphanDependents"))
            or options.get("orphanDependents")
        )
        options["_orphan"] = bool(orphan)
        return dry_run, options

    def delete(
        self,
        res: ResourceType,
        namespace: str | None,
        name: str,
        query: dict[str, list[str]],
        body: bytes = b"",
    ) -> dict[str, Any]:
        dry_run, options = self._delete_options(query, body)
        entry = self.store.get(res, namespace, name)
        if entry is None:
            raise errors.not_found(res.plural, res.group, name)
        obj = entry.obj
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != obj["metadata"].get("uid"):
            raise errors.conflict(
                res.plural,
                res.group,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {obj['metadata'].get('uid')}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"].get(
            "resourceVersion"
        ):
            raise errors.conflict(
                res.plural,
                res.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                f"ResourceVersion in object meta: {obj['metadata'].get('resourceVersion')}",
            )
        if dry_run:
            return copy.deepcopy(obj)
        if obj["metadata"].get("finalizers") and res is not NAMESPACES:
            if obj["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(obj)
            marked = copy.deepcopy(obj)
            marked["metadata"]["deletionTimestamp"] = now_rfc3339()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            marked["metadata"]["resourceVersion"] = self.store.next_rv()
            self.store.put(res, marked)
            return copy.deepcopy(marked)
        if res is NAMESPACES:
            result = copy.deepcopy(obj)
            result["metadata"]["deletionTimestamp"] = now_rfc3339()
            result["status"] = {"phase": "Terminating"}
            for other in RESOURCES:
                if other.namespaced:
                    for key in list(self.store.keys_after(other, None, name)):
                        inner = self.store.get(other, key[0], key[1])
                        if inner is not None:
                            self._remove(other, inner.obj, orphan=False)
            self._remove(res, obj, orphan=False)
            return result
        self._remove(res, obj, orphan=bool(options["_orphan"]))
        return copy.deepcopy(obj)

    def _remove(self, res: ResourceType, obj: dict[str, Any], orphan: bool) -> None:
        meta = obj["metadata"]
        if (
            self.store.remove(res, meta.get("namespace") if res.namespaced else None, meta["name"])
            is None
        ):
            return
        self.store.next_rv()
        if res is VIRTUAL_MACHINES:
            self.kubevirt.on_vm_deleted(obj, orphan)
        elif res is VIRTUAL_MACHINE_INSTANCES:
            self.kubevirt.on_vmi_deleted(obj)

    def delete_collection(
        self, res: ResourceType, namespace: str | None, query: dict[str, list[str]], body: bytes
    ) -> dict[str, Any]:
        dry_run, options = self._delete_options(query, body)
        items = []
        for entry in self._matching(res, namespace, query):
            items.append(copy.deepcopy(entry.obj))
            if not dry_run:
                self._remove(res, entry.obj, orphan=bool(options["_orphan"]))
        return {
            "kind": res.list_kind,
            "apiVersion": res.api_version,
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": items,
        }


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """What generation tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}
