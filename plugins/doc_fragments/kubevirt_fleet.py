# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the modules that change the template of many KubeVirt VMs at once."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  name:
    description:
      - Name of one VirtualMachine to act on. Requires O(namespace).
      - Cannot be combined with O(label_selectors) or O(all_namespaces).
    type: str
  namespace:
    description:
      - Namespace of the VirtualMachines (and Templates) to act on.
      - Required unless O(all_namespaces=true).
    type: str
  all_namespaces:
    description:
      - Select VirtualMachines in every namespace the credentials can list.
    type: bool
    default: false
  label_selectors:
    description:
      - Label selectors that the VirtualMachines must all match, in Kubernetes syntax
        (V(app=web), V(tier!=db), V(env in (prod,stage\)), V(canary), V(!legacy)).
      - Without selectors every VirtualMachine of the namespace(s) is selected.
    type: list
    elements: str
    default: []
  exclude:
    description:
      - VirtualMachines (and Templates) to leave alone, as V(name) or V(namespace/name).
      - They are reported with action V(skipped).
    type: list
    elements: str
    default: []
  templates:
    description:
      - Also update OpenShift Templates (C(template.openshift.io/v1)) selected the same way, changing
        every VirtualMachine they embed, so that VMs created from them later get the change too.
    type: bool
    default: false
  restart:
    description:
      - What to do with running VMs whose change only applies after a restart
        (template changes are not live-updatable, and live migration does not carry them).
      - V(never) only reports RV(vms[].restart_required).
      - V(if_needed) restarts every VM that needs it at once, then waits until all are Ready.
      - V(rolling) restarts them in batches of O(max_unavailable) and waits for each batch to be
        Ready before the next; the rollout stops at the first batch that is not Ready within
        O(wait_timeout).
      - VMs whose run strategy forbids API restarts (V(Halted), V(Once), V(WaitAsReceiver)) are
        never restarted; their result says so.
      - A restart uses KubeVirt's C(restart) subresource, which replaces the VMI.
    type: str
    default: never
    choices: [never, if_needed, rolling]
  max_unavailable:
    description:
      - With O(restart=rolling), how many VMs may be restarting at once, as a count (V(2)) or a
        percentage (V(25%)) of the selected running VMs, rounded down but at least 1.
    type: raw
    default: 1
  wait_timeout:
    description:
      - Seconds to wait for a batch of restarted VMs to be Ready (new VMI, Ready condition True).
    type: int
    default: 600
  wait_sleep:
    description:
      - Seconds between two readiness checks while waiting.
    type: int
    default: 5
  parallel:
    description:
      - Number of concurrent API requests for writes, restarts and readiness checks (1-64).
    type: int
    default: 8
"""
