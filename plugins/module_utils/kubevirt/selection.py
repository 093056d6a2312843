# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which VirtualMachines a task acts on: validation and the pieces of the LIST request.

Pure: every check here runs before the first API request, so a bad selector costs nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ValidationError
from ansible_collections.vmhealth.kvm.plugins.module_utils.k8s_api import resource_path

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SET_REQUIREMENT = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ_REQUIREMENT = re.compile(r"^(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>\S*)$")
_PERCENT = re.compile(r"^(\d+)%$")


def check_dns1123_subdomain(value, field):
    """Object names (VMs, Templates, rules) must be DNS-1123 subdomains."""
    if not isinstance(value, str) or len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        raise ValidationError(
            "{0}: {1!r} is not a valid name: use at most 253 lower-case letters, digits, '-' "
            "and '.', starting and ending with a letter or digit".format(field, value)
        )


def check_namespace(value, field="namespace"):
    """Namespaces are DNS-1123 labels."""
    if not isinstance(value, str) or len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise ValidationError(
            "{0}: {1!r} is not a valid namespace: use at most 63 lower-case letters, digits "
            "and '-', starting and ending with a letter or digit".format(field, value)
        )


def _check_label_key(label_key, field):
    prefix, _slash, name = label_key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        raise ValidationError(
            "{0}: label key prefix {1!r} is not a DNS subdomain".format(field, prefix)
        )
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        raise ValidationError("{0}: {1!r} is not a valid label key".format(field, label_key))


def _check_label_value(value, field):
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise ValidationError("{0}: {1!r} is not a valid label value".format(field, value))


def _split_requirements(selector):
    """Split on commas that are not inside a ``( ... )`` value set."""
    parts, depth, current = [], 0, []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def check_label_selector(selector, field):
    """Validate one selector string with Kubernetes' syntax (=, ==, !=, in, notin, exists, !)."""
    if not isinstance(selector, str) or not selector.strip():
        raise ValidationError("{0}: a label selector must be a non-empty string".format(field))
    for requirement in _split_requirements(selector):
        if not requirement:
            raise ValidationError("{0}: empty requirement in {1!r}".format(field, selector))
        match = _SET_REQUIREMENT.match(requirement)
        if match:
            _check_label_key(match.group("key"), field)
            values = [v.strip() for v in match.group("values").split(",")]
            if values == [""]:
                raise ValidationError(
                    "{0}: {1!r} needs at least one value in its set".format(field, requirement)
                )
            for value in values:
                _check_label_value(value, field)
            continue
        match = _EQ_REQUIREMENT.match(requirement)
        if match:
            _check_label_key(match.group("key"), field)
            _check_label_value(match.group("value"), field)
            continue
        label_key = requirement[1:].strip() if requirement.startswith("!") else requirement
        if " " in label_key or "(" in label_key or ")" in label_key:
            raise ValidationError("{0}: cannot parse requirement {1!r}".format(field, requirement))
        _check_label_key(label_key, field)


def parse_max_unavailable(value, total):
    """Resolve ``max_unavailable`` (a count or a percentage of ``total``) to a batch size >= 1."""
    if isinstance(value, bool):
        value = None
    text = str(value).strip() if value is not None else ""
    match = _PERCENT.match(text)
    if match:
        percent = int(match.group(1))
        if not 1 <= percent <= 100:
            raise ValidationError("max_unavailable: a percentage must be between 1% and 100%")
        return max(1, (total * percent) // 100)
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise ValidationError(
        "max_unavailable: {0!r} is neither a positive count nor a percentage such as '25%'".format(
            value
        )
    )


class Selection:
    """A validated selection of VirtualMachines (and optionally Templates)."""

    def __init__(
        self, name=None, namespace=None, all_namespaces=False, label_selectors=None, exclude=None
    ):
        self.name = name
        self.namespace = namespace
        self.all_namespaces = bool(all_namespaces)
        self.label_selectors = list(label_selectors or [])
        self.exclude = set(exclude or [])

    @classmethod
    def from_params(cls, params):
        """Build and validate a selection from module parameters (names as in the docs)."""
        selection = cls(
            name=params.get("name"),
            namespace=params.get("namespace"),
            all_namespaces=params.get("all_namespaces"),
            label_selectors=params.get("label_selectors"),
            exclude=params.get("exclude"),
        )
        selection.validate()
        return selection

    def validate(self):
        if self.name is not None:
            check_dns1123_subdomain(self.name, "name")
            if not self.namespace:
                raise ValidationError("namespace: required when name is given")
            if self.label_selectors or self.all_namespaces:
                raise ValidationError(
                    "name: cannot be combined with label_selectors or all_namespaces"
                )
        if self.namespace is not None:
            check_namespace(self.namespace)
            if self.all_namespaces:
                raise ValidationError("namespace: cannot be combined with all_namespaces=true")
        elif not self.all_namespaces:
            raise ValidationError("namespace: required unless all_namespaces=true")
        for index, selector in enumerate(self.label_selectors):
            check_label_selector(selector, "label_selectors[{0}]".format(index))
        for index, entry in enumerate(sorted(self.exclude)):
            field = "exclude[{0}]".format(index)
            ns, _slash, name = entry.rpartition("/")
            if ns:
                check_namespace(ns, field)
            check_dns1123_subdomain(name, field)

    @property
    def label_selector(self):
        """The selectors ANDed into one ``labelSelector`` query value (or None)."""
        return ",".join(self.label_selectors) or None

    @property
    def field_selector(self):
        return "metadata.name={0}".format(self.name) if self.name else None

    def collection_path(self, group_version, plural):
        """Path of the LIST request for this selection."""
        return resource_path(group_version, plural, None if self.all_namespaces else self.namespace)

    def is_excluded(self, namespace, name):
        return name in self.exclude or "{0}/{1}".format(namespace, name) in self.exclude
