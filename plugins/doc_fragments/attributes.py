# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the attributes every vmhealth.kvm module declares mean; modules add support and details."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the changed status without modifying the target.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode).
  action_group:
    description: Use C(group/vmhealth.kvm.vmhealth) in C(module_defaults) to set defaults for this module.
    support: full
    membership: [vmhealth.kvm.vmhealth]
"""
