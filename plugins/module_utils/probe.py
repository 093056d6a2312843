# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness and liveness probes for KubeVirt VMs: validation, desired state, detection time.

Pure computation, no API access. The desired probe is exactly what the user asked for, in
the API's camelCase, because KubeVirt stores the VM template as sent (defaults are applied
to the VMI only): comparing against the stored template therefore needs no defaulting.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ValidationError, VmRejected
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt import vm as vmfacts

INT32_MAX = 2147483647

#: KubeVirt's defaults for the VMI (pkg/defaults), used only for the detection-time figure.
DEFAULT_TIMEOUT_SECONDS = 1
DEFAULT_PERIOD_SECONDS = 10
DEFAULT_FAILURE_THRESHOLD = 3

PROBE_FIELDS = {"readiness": "readinessProbe", "liveness": "livenessProbe"}
HANDLERS = ("guest_agent_ping", "exec", "http_get", "tcp_socket")
AGENT_HANDLERS = ("guest_agent_ping", "exec")

#: option name -> (API field, minimum)
TIMINGS = (
    ("initial_delay_seconds", "initialDelaySeconds", 0),
    ("timeout_seconds", "timeoutSeconds", 1),
    ("period_seconds", "periodSeconds", 1),
    ("success_threshold", "successThreshold", 1),
    ("failure_threshold", "failureThreshold", 1),
)

_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _port(value, field):
    """A port is 1-65535 or an IANA service name (as Kubernetes' IntOrString allows)."""
    if isinstance(value, bool):
        raise ValidationError("{0}: must be a port number 1-65535 or a port name".format(field))
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        number = int(value)
        if not 1 <= number <= 65535:
            raise ValidationError("{0}: port {1} is out of range 1-65535".format(field, number))
        return number
    if (
        isinstance(value, str)
        and 1 <= len(value) <= 15
        and _PORT_NAME.match(value)
        and "--" not in value
        and re.search("[a-z]", value)
    ):
        return value
    raise ValidationError(
        "{0}: {1!r} is neither a port number 1-65535 nor a valid port name "
        "(at most 15 lower-case letters, digits and '-', with at least one letter)".format(
            field, value
        )
    )


def _exec_handler(options):
    command = (options or {}).get("command")
    if not command or not isinstance(command, list):
        raise ValidationError("exec.command: a non-empty list of strings is required")
    for index, arg in enumerate(command):
        if not isinstance(arg, str):
            raise ValidationError("exec.command[{0}]: must be a string".format(index))
    if not command[0].strip():
        raise ValidationError("exec.command[0]: the program must not be empty")
    return {"command": list(command)}


def _http_get_handler(options):
    options = options or {}
    if options.get("port") is None:
        raise ValidationError("http_get.port: required")
    handler = {"port": _port(options["port"], "http_get.port")}
    path = options.get("path")
    if path is not None:
        if not path.startswith("/"):
            raise ValidationError("http_get.path: {0!r} must start with '/'".format(path))
        handler["path"] = path
    if options.get("host"):
        handler["host"] = options["host"]
    if options.get("scheme"):
        if options["scheme"] not in ("HTTP", "HTTPS"):
            raise ValidationError("http_get.scheme: must be HTTP or HTTPS")
        handler["scheme"] = options["scheme"]
    headers = options.get("http_headers")
    if headers:
        handler["httpHeaders"] = []
        for index, header in enumerate(headers):
            field = "http_get.http_headers[{0}]".format(index)
            name = (header or {}).get("name")
            if not name or not _HEADER_NAME.match(name):
                raise ValidationError(
                    "{0}.name: {1!r} is not a valid HTTP header name".format(field, name)
                )
            value = header.get("value")
            if value is None:
                raise ValidationError("{0}.value: required".format(field))
            handler["httpHeaders"].append({"name": name, "value": str(value)})
    return handler


def _tcp_socket_handler(options):
    options = options or {}
    if options.get("port") is None:
        raise ValidationError("tcp_socket.port: required")
    handler = {"port": _port(options["port"], "tcp_socket.port")}
    if options.get("host"):
        handler["host"] = options["host"]
    return handler


def _handler_set(params, name):
    value = params.get(name)
    if name == "guest_agent_ping":
        return value is True
    return value is not None


class ProbeSpec:
    """A validated probe request: ``ProbeSpec.from_params(module.params)``."""

    def __init__(self, kind, state, handler=None, body=None):
        self.kind = kind  # readiness | liveness
        self.state = state  # present | absent
        self.handler = handler  # which option of HANDLERS
        self.body = body  # the probe exactly as it will be stored, or None

    @property
    def field(self):
        return PROBE_FIELDS[self.kind]

    @property
    def uses_guest_agent(self):
        return self.handler in AGENT_HANDLERS

    @classmethod
    def from_params(cls, params):
        kind = params.get("probe")
        if kind not in PROBE_FIELDS:
            raise ValidationError("probe: must be one of readiness, liveness")
        state = params.get("state") or "present"
        chosen = [name for name in HANDLERS if _handler_set(params, name)]
        if state == "absent":
            if chosen:
                raise ValidationError(
                    "{0}: handlers are not used with state=absent (the whole {1} probe is removed)".format(
                        chosen[0], kind
                    )
                )
            return cls(kind, state)
        if len(chosen) > 1:
            raise ValidationError(
                "{0}: a probe has exactly one handler, but {1} are set".format(
                    ", ".join(chosen), len(chosen)
                )
            )
        if not chosen:
            raise ValidationError(
                "guest_agent_ping, exec, http_get, tcp_socket: exactly one handler is required with state=present"
            )
        handler = chosen[0]
        if handler == "guest_agent_ping":
            body = {"guestAgentPing": {}}
        elif handler == "exec":
            body = {"exec": _exec_handler(params.get("exec"))}
        elif handler == "http_get":
            body = {"httpGet": _http_get_handler(params.get("http_get"))}
        else:
            body = {"tcpSocket": _tcp_socket_handler(params.get("tcp_socket"))}

        for option, api_field, minimum in TIMINGS:
            value = params.get(option)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError("{0}: must be an integer".format(option))
            if not minimum <= value <= INT32_MAX:
                raise ValidationError(
                    "{0}: {1} is out of range {2}-{3}".format(option, value, minimum, INT32_MAX)
                )
            body[api_field] = value

        timeout = body.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)
        period = body.get("periodSeconds", DEFAULT_PERIOD_SECONDS)
        if timeout >= period:
            raise ValidationError(
                "timeout_seconds: {0} must be lower than period_seconds ({1}), or probes overlap".format(
                    timeout, period
                )
            )
        if kind == "liveness" and body.get("successThreshold", 1) != 1:
            raise ValidationError(
                "success_threshold: must be 1 for a liveness probe (Kubernetes rejects other values when "
                "the VM's pod is created, so the VM would save and then fail to start)"
            )
        return cls(kind, state, handler, body)

    def detection_seconds(self):
        """Worst-case seconds from a guest failure to the probe declaring it (None when absent).

        period x failure_threshold + timeout, with KubeVirt's defaults for unset fields.
        The initial delay only matters after a start, not for a running guest.
        """
        if self.body is None:
            return None
        return self.body.get("periodSeconds", DEFAULT_PERIOD_SECONDS) * self.body.get(
            "failureThreshold", DEFAULT_FAILURE_THRESHOLD
        ) + self.body.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)

    def check_detection(self, max_detection_seconds):
        """Fail when the probe cannot detect a failure within ``max_detection_seconds``."""
        if max_detection_seconds is None or self.body is None:
            return
        worst = self.detection_seconds()
        if worst > max_detection_seconds:
            raise ValidationError(
                "max_detection_seconds: the probe needs up to {0} s to declare a failure "
                "(period_seconds x failure_threshold + timeout_seconds), more than {1} s".format(
                    worst, max_detection_seconds
                )
            )


class ProbePolicy:
    """Applies a :class:`ProbeSpec` to a VM template spec (the fleet engine's policy)."""

    def __init__(self, spec):
        self.spec = spec

    def view(self, template_spec):
        """The part of the template spec this policy manages, for diffs."""
        value = template_spec.get(self.spec.field)
        return {self.spec.field: value} if value is not None else {}

    def check(self, vm):
        """Raise VmRejected when this VM cannot take the probe (KubeVirt would refuse it)."""
        if self.spec.state != "present":
            return
        if self.spec.handler in ("http_get", "tcp_socket") and not vmfacts.has_pod_network(vm):
            raise VmRejected(
                "{0}: {1} probes are only allowed when the VM is attached to the pod network".format(
                    self.spec.field, "httpGet" if self.spec.handler == "http_get" else "tcpSocket"
                )
            )
        if (
            self.spec.kind == "liveness"
            and vmfacts.template_spec(vm).get("startStrategy") == "Paused"
        ):
            raise VmRejected(
                "livenessProbe: KubeVirt rejects liveness probes on VMs with startStrategy Paused"
            )

    def apply(self, template_spec):
        """Set (or remove) the probe in a copy of the template spec, in place."""
        if self.spec.state == "absent":
            template_spec.pop(self.spec.field, None)
        else:
            template_spec[self.spec.field] = dict(self.spec.body)

    def wants_agent(self):
        """Whether running VMs should have a connected guest agent for this probe to pass."""
        return self.spec.state == "present" and self.spec.uses_guest_agent
