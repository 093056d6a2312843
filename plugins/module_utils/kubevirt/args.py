# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec shared by the modules that act on a fleet of KubeVirt VMs.

Documented once in the ``vmhealth.kvm.kubevirt_fleet`` doc fragment.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

FLEET_ARG_SPEC = {
    "name": {"type": "str"},
    "namespace": {"type": "str"},
    "all_namespaces": {"type": "bool", "default": False},
    "label_selectors": {"type": "list", "elements": "str", "default": []},
    "exclude": {"type": "list", "elements": "str", "default": []},
    "templates": {"type": "bool", "default": False},
    "restart": {"type": "str", "default": "never", "choices": ["never", "if_needed", "rolling"]},
    "max_unavailable": {"type": "raw", "default": 1},
    "wait_timeout": {"type": "int", "default": 600},
    "wait_sleep": {"type": "int", "default": 5},
    "parallel": {"type": "int", "default": 8},
}

#: Upper bound of the worker pool; more threads would only queue on the API server.
MAX_PARALLEL = 64


def fleet_argument_spec(extra):
    """kubernetes.core's auth options + the fleet options + a module's own ``extra`` options."""
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(copy.deepcopy(FLEET_ARG_SPEC))
    spec.update(extra)
    return spec


FLEET_MUTUALLY_EXCLUSIVE = [
    ("name", "all_namespaces"),
    ("name", "label_selectors"),
    ("namespace", "all_namespaces"),
]
