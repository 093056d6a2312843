#!/usr/bin/python
# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: qemu_watchdog
short_description: Ensure a virtual watchdog (and a panic device) on KubeVirt, libvirt and Proxmox VE VMs
version_added: 0.1.0
author:
  - vmhealth.kvm contributors (@vmhealth)
description:
  - Ensures a virtual watchdog device on QEMU virtual machines managed by KubeVirt, libvirt or
    Proxmox VE. A daemon in the guest (see the P(vmhealth.kvm.guest_watchdog#role) role) pings the
    device; when the guest hangs or panics and the pings stop, the hypervisor runs O(action),
    typically a reset, so a hung guest comes back without a human.
  - Optionally ensures a panic device (O(panic_device)), through which a crashing guest reports
    the crash at once; a Windows guest, which has no watchdog driver, reports its bugcheck code
    with V(hyperv).
  - V(kubevirt) sets C(spec.template.spec.domain.devices.watchdog) (and C(panicDevices)) on one
    VirtualMachine or a fleet selected by namespace and labels, with the same selection, guarded
    writes and restart behaviour as M(vmhealth.kvm.kubevirt_vm_probe).
  - V(libvirt) edits the persistent domain XML (C(<watchdog model action/>), C(<panic model/>)).
  - V(proxmox) sets the VM option C(watchdog) through the Proxmox VE API, never by editing the
    files under C(/etc/pve).
  - A running VM keeps its old devices until it is restarted (a reboot inside the guest is not
    enough); the result says so in RV(vms[].restart_required), and O(restart) can restart it.
  - All parameters are validated before the first API request.
extends_documentation_fragment:
  - vmhealth.kvm.attributes
  - kubernetes.core.k8s_auth_options
  - vmhealth.kvm.kubevirt_fleet
attributes:
  check_mode:
    support: full
    details: Makes no write request at all, and restarts nothing.
  diff_mode:
    support: full
    details: Returns the managed devices before and after for every VM that changes.
options:
  platform:
    description:
      - Where the VMs live.
      - V(kubevirt) uses the Kubernetes connection options and the fleet options (O(name),
        O(namespace), O(label_selectors), ...).
      - V(libvirt) uses O(uri) and O(name) (the domain name).
      - V(proxmox) uses O(api_host), O(api_user), an API token or password, and O(vmid) or O(name).
    type: str
    required: true
    choices: [kubevirt, libvirt, proxmox]
  name:
    description:
      - V(kubevirt) the VirtualMachine name (see the fleet options), V(libvirt) the domain name
        (required), V(proxmox) the VM name (unique in the cluster; or use O(vmid)).
    type: str
  state:
    description:
      - V(present) ensures the watchdog with O(model) and O(action); V(absent) removes it.
    type: str
    default: present
    choices: [present, absent]
  model:
    description:
      - The watchdog device model.
      - V(auto) picks by architecture. KubeVirt C(amd64) V(i6300esb), C(s390x) V(diag288); C(arm64)
        has no watchdog in KubeVirt and such VMs fail with the reason. libvirt x86 V(i6300esb),
        s390x V(diag288). Proxmox VE V(i6300esb).
      - libvirt also offers V(ib700) (i440fx machines only), V(itco) (q35 only) and V(diag288)
        (s390 only); a domain that cannot have the model fails with the reason.
      - V(ib700) is refused on Proxmox VE, which gives the ISA device a PCI address, so the VM
        would very likely not start.
      - With O(state=absent), V(auto) removes every watchdog; another model removes only that one
        (libvirt).
    type: str
    default: auto
    choices: [auto, i6300esb, ib700, itco, diag288]
  action:
    description:
      - What the hypervisor does when the guest stops pinging the watchdog. Defaults to V(reset).
      - KubeVirt V(reset), V(poweroff), V(shutdown). libvirt also V(pause), V(none), V(dump),
        V(inject-nmi). Proxmox VE also V(pause), V(debug), V(none).
      - V(shutdown) is an ACPI request a hung guest usually cannot answer; the module warns.
      - All watchdogs of a libvirt domain share one action.
      - Not used with O(state=absent).
    type: str
    choices: [reset, poweroff, shutdown, pause, none, dump, inject-nmi, debug]
  panic_device:
    description:
      - Also ensure exactly one panic device of this model (V(kubevirt) and V(libvirt)); V(none)
        removes the panic devices; unset leaves them alone.
      - V(isa) and V(hyperv) are x86 devices. V(hyperv) lets a Windows guest report its bugcheck
        code. libvirt before 9.1 has no V(pvpanic) (PCI) model.
    type: str
    choices: [pvpanic, hyperv, isa, none]
  force:
    description:
      - Add the watchdog to Windows guests too. Windows has no driver for these devices, so by
        default such VMs fail with the reason (detected from KubeVirt OS labels and annotations,
        libvirt's libosinfo metadata, Proxmox VE's C(ostype)).
    type: bool
    default: false
  watchdog_name:
    description:
      - V(kubevirt) only. Name of the watchdog device; an existing device keeps its name unless this
        is set. New devices are called C(watchdog).
    type: str
  restart:
    description:
      - What to do with a running VM that still runs without the desired devices.
      - V(never) only reports RV(vms[].restart_required).
      - V(if_needed) restarts it. KubeVirt as described in the fleet options; libvirt with a clean
        shutdown, a C(destroy) after O(shutdown_timeout), then a start; Proxmox VE with the API
        reboot (C(status/reboot)), which applies the pending change.
      - V(rolling) is for V(kubevirt) only.
    type: str
    default: never
    choices: [never, if_needed, rolling]
  shutdown_timeout:
    description:
      - V(libvirt) and V(proxmox). Seconds a restart waits for the guest to shut down cleanly
        (then libvirt destroys the domain, Proxmox VE stops the VM). Default 120.
    type: int
  uri:
    description:
      - V(libvirt) only. The libvirt connection URI. Default V(qemu:///system).
    type: str
  api_host:
    description:
      - V(proxmox) only. Host name or address of a Proxmox VE node (no scheme, no port).
    type: str
  api_port:
    description:
      - V(proxmox) only. Port of the API. Default 8006.
    type: int
  api_user:
    description:
      - V(proxmox) only. User, as C(user@realm) (for an API token, the token's owner).
      - The user or token needs C(VM.Audit) and C(VM.Config.HWType) on the VM, plus
        C(VM.PowerMgmt) for O(restart=if_needed).
    type: str
  api_password:
    description:
      - V(proxmox) only. Password of O(api_user) (a ticket is requested). Prefer an API token.
    type: str
  api_token_id:
    description:
      - V(proxmox) only. ID of an API token of O(api_user) (the part after C(!)).
    type: str
  api_token_secret:
    description:
      - V(proxmox) only. Secret (UUID) of the API token.
    type: str
  vmid:
    description:
      - V(proxmox) only. The VM's ID. Either O(vmid) or O(name) is required.
    type: int
  validate_certs:
    description:
      - Whether to verify the TLS certificate of the API server.
      - V(kubevirt) see the Kubernetes connection options (C(K8S_AUTH_VERIFY_SSL)).
      - V(proxmox) defaults to V(true); the CA bundle can be given with C(REQUESTS_CA_BUNDLE).
    type: bool
    aliases: [verify_ssl]
notes:
  - The watchdog only fires once software in the guest has opened the device; until then the
    device is idle. Use the P(vmhealth.kvm.guest_watchdog#role) role or the C(watchdog) package.
  - q35 machines of QEMU 8.0 and later also have the chipset's iTCO watchdog, which libvirt does
    not list in the domain XML.
  - KubeVirt checks the watchdog model against the architecture only when a VM starts; this module
    checks it before writing. VMs without C(spec.template.spec.architecture) count as C(amd64).
  - Proxmox VE keeps a watchdog change of a running VM pending; the module compares against the
    pending configuration, so a pending change is not written again, and writes with the config
    digest, so a concurrent edit is never overwritten.
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0 and PyYAML (platform kubevirt)
  - libvirt-python (platform libvirt)
  - proxmoxer >= 2.0 and requests (platform proxmox)
seealso:
  - module: vmhealth.kvm.kubevirt_vm_probe
  - name: KubeVirt watchdog
    description: The KubeVirt user guide on watchdogs.
    link: https://kubevirt.io/user-guide/user_workloads/liveness_and_readiness_probes/#defining-a-watchdog
  - name: libvirt watchdog devices
    description: The C(watchdog) and C(panic) elements of the libvirt domain XML.
    link: https://libvirt.org/formatdomain.html#watchdog-devices
"""

EXAMPLES = r"""
- name: Reset hung guests of every VM of a namespace, restarting them two at a time
  vmhealth.kvm.qemu_watchdog:
    platform: kubevirt
    namespace: vms-prod
    label_selectors: [vmhealth.io/watchdog=enabled]
    action: reset
    panic_device: pvpanic
    restart: rolling
    max_unavailable: 2

- name: Windows VMs get no watchdog, but a Hyper-V panic device that reports the bugcheck code
  vmhealth.kvm.qemu_watchdog:
    platform: kubevirt
    namespace: vms-win
    state: absent
    panic_device: hyperv

- name: A libvirt domain, restarted if it runs
  vmhealth.kvm.qemu_watchdog:
    platform: libvirt
    uri: qemu:///system
    name: web-01
    model: i6300esb
    action: reset
    restart: if_needed
    shutdown_timeout: 60

- name: A Proxmox VE VM by name, with an API token
  vmhealth.kvm.qemu_watchdog:
    platform: proxmox
    api_host: pve1.example.com
    api_user: automation@pve
    api_token_id: watchdog
    api_token_secret: "{{ vault_pve_token_secret }}"
    name: db-01
    action: reset
    restart: if_needed
"""

RETURN = r"""
changed:
  description: Whether any VM was written or restarted.
  returned: always
  type: bool
vms:
  description: One result per selected VM (one for libvirt and Proxmox VE).
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(VirtualMachine) or V(Template) (KubeVirt), V(Domain) (libvirt), V(QemuVM) (Proxmox VE).
      type: str
      sample: VirtualMachine
    namespace:
      description: Namespace of the object (KubeVirt).
      type: str
      returned: with platform kubevirt
    name:
      description: Name of the VM.
      type: str
      sample: web-01
    vmid:
      description: The VM's ID (Proxmox VE).
      type: int
      returned: with platform proxmox
    node:
      description: The node the VM is on (Proxmox VE).
      type: str
      returned: with platform proxmox
    uri:
      description: The libvirt connection URI.
      type: str
      returned: with platform libvirt
    action:
      description:
        - V(created), V(updated), V(removed), V(unchanged), V(failed) (see RV(vms[].reason)) or
          V(skipped) (excluded). In check mode, what would be done.
      type: str
      sample: created
    restart_required:
      description: Whether the VM runs with other devices than configured and still needs a restart.
      type: bool
      sample: true
    restarted:
      description: Whether the module restarted the VM.
      type: bool
      sample: false
    ready:
      description: KubeVirt, for restarted VMs, whether the new VMI became Ready within O(wait_timeout).
      type: bool
      returned: when a KubeVirt VM was restarted
    reason:
      description: Why the VM failed, was skipped or not restarted; empty otherwise.
      type: str
      sample: "architecture arm64: KubeVirt offers no watchdog device on arm64 (the VM would save, then fail to start); use state=absent or leave this VM out"
    diff:
      description: The managed devices before and after.
      type: dict
      returned: in diff mode, when the VM changes
      sample: {"before": {}, "after": {"watchdog": {"name": "watchdog", "i6300esb": {"action": "reset"}}}}
counts:
  description: How many VMs got each action, plus C(restarted) and C(restart_required).
  returned: always
  type: dict
  sample: {"created": 10, "updated": 0, "removed": 0, "unchanged": 990, "failed": 0, "skipped": 0,
           "restarted": 0, "restart_required": 10}
rollout:
  description: KubeVirt, summary of the restarts (see M(vmhealth.kvm.kubevirt_vm_probe)).
  returned: with platform kubevirt when O(restart) is not V(never)
  type: dict
"""

from ansible_collections.kubernetes.core.plugins.module_utils.ansiblemodule import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import (
    ValidationError,
    VmHealthError,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.args import (
    FLEET_MUTUALLY_EXCLUSIVE,
    fleet_argument_spec,
)
from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog import common

DEFAULT_URI = "qemu:///system"
DEFAULT_SHUTDOWN_TIMEOUT = 120


def argument_spec():
    return fleet_argument_spec(
        {
            "platform": {"type": "str", "required": True, "choices": list(common.PLATFORMS)},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "model": {"type": "str", "default": "auto", "choices": list(common.ALL_MODELS)},
            "action": {"type": "str", "choices": list(common.ALL_ACTIONS)},
            "panic_device": {"type": "str", "choices": list(common.ALL_PANIC_MODELS)},
            "force": {"type": "bool", "default": False},
            "watchdog_name": {"type": "str"},
            "shutdown_timeout": {"type": "int"},
            "uri": {"type": "str"},
            "api_host": {"type": "str"},
            "api_port": {"type": "int"},
            "api_user": {"type": "str"},
            "api_password": {"type": "str", "no_log": True},
            "api_token_id": {"type": "str"},
            "api_token_secret": {"type": "str", "no_log": True},
            "vmid": {"type": "int"},
        }
    )


def validate_single_vm_options(params):
    """Options of the libvirt and Proxmox VE backends. No API access."""
    platform = params["platform"]
    if platform == "libvirt":
        if not params.get("name"):
            raise ValidationError("name: the domain name is required with platform=libvirt")
        uri = params.get("uri") or DEFAULT_URI
        if "://" not in uri and not uri.endswith(":"):
            raise ValidationError(
                "uri: {0!r} is not a libvirt URI such as qemu:///system".format(uri)
            )
        return
    host = params.get("api_host")
    if not host:
        raise ValidationError("api_host: required with platform=proxmox")
    if "/" in host or host.count(":") == 1 or not host.strip():
        raise ValidationError(
            "api_host: {0!r} must be a host name or address, without scheme, port or path".format(
                host
            )
        )
    port = params.get("api_port")
    if port is not None and not 1 <= port <= 65535:
        raise ValidationError("api_port: {0} is out of range 1-65535".format(port))
    user = params.get("api_user") or ""
    if "@" not in user.strip("@") or "!" in user:
        raise ValidationError(
            "api_user: {0!r} must be user@realm (e.g. root@pam); give the token ID in "
            "api_token_id".format(user)
        )
    token_id, token_secret = params.get("api_token_id"), params.get("api_token_secret")
    password = params.get("api_password")
    if bool(token_id) != bool(token_secret):
        raise ValidationError("api_token_id, api_token_secret: give both, or neither")
    if token_id and password:
        raise ValidationError("api_password: give either an API token or a password, not both")
    if not token_id and not password:
        raise ValidationError(
            "api_token_id, api_token_secret, api_password: an API token or a password is required"
        )
    if token_id and ("!" in token_id or "=" in token_id or not token_id[0].isalpha()):
        raise ValidationError(
            "api_token_id: must start with a letter and contain no '!' or '=' (only the part after '!')"
        )
    vmid, name = params.get("vmid"), params.get("name")
    if (vmid is None) == (not name):
        raise ValidationError("vmid, name: exactly one of them is required with platform=proxmox")
    if vmid is not None and not 100 <= vmid <= 999999999:
        raise ValidationError("vmid: {0} is out of range 100-999999999".format(vmid))


def make_backend(module, spec):
    """The libvirt or Proxmox VE backend for the module's options (connects lazily or now)."""
    params = module.params
    timeout = params.get("shutdown_timeout") or DEFAULT_SHUTDOWN_TIMEOUT
    if spec.platform == "libvirt":
        from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.libvirt import (
            HAS_LIBVIRT,
            LibvirtBackend,
        )

        if not HAS_LIBVIRT:
            module.fail_json(msg="libvirt-python is required for platform=libvirt")
        return LibvirtBackend(
            params.get("uri") or DEFAULT_URI,
            params["name"],
            spec,
            shutdown_timeout=timeout,
            wait_timeout=params["wait_timeout"],
        )
    from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog import proxmox

    if not proxmox.HAS_PROXMOXER:
        module.fail_json(msg="proxmoxer and requests are required for platform=proxmox")
    client = proxmox.ProxmoxClient(proxmox.connect(params))
    return proxmox.ProxmoxBackend(
        client,
        spec,
        vmid=params.get("vmid"),
        name=params.get("name"),
        shutdown_timeout=timeout,
        wait_timeout=params["wait_timeout"],
    )


def run_single_vm(module, spec):
    backend = make_backend(module, spec)
    result = common.reconcile(
        backend,
        spec,
        restart=module.params["restart"],
        check_mode=module.check_mode,
        diff_mode=module._diff,
    )
    message = common.failure_message(result)
    if message:
        module.fail_json(msg=message, **result)
    module.exit_json(**result)


def main():
    module = AnsibleK8SModule(
        module_class=AnsibleModule,
        argument_spec=argument_spec(),
        mutually_exclusive=FLEET_MUTUALLY_EXCLUSIVE + [("api_password", "api_token_id")],
        supports_check_mode=True,
        # The Kubernetes client is only needed (and checked) for platform=kubevirt.
        check_k8s=False,
        check_pyyaml=False,
    )
    try:
        spec = common.WatchdogSpec.from_params(module.params)
        if spec.platform == "kubevirt":
            from ansible_collections.vmhealth.kvm.plugins.module_utils.kubevirt.runner import (
                run_fleet_module,
            )
            from ansible_collections.vmhealth.kvm.plugins.module_utils.watchdog.kubevirt import (
                build_policy,
            )

            module.requires("kubernetes")
            module.requires("pyyaml")
            run_fleet_module(module, lambda params: build_policy(params, module.warn))
        else:
            validate_single_vm_options(module.params)
            for warning in spec.warnings():
                module.warn(warning)
            run_single_vm(module, spec)
    except VmHealthError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
