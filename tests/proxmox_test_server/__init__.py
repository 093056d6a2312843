"""A Proxmox VE API **test double** for qemu_watchdog's tests (not Proxmox VE).

It serves, over HTTPS with a throw-away CA, the subset of ``/api2/json`` that qemu_watchdog uses
(cluster resources, VM config with current and pending values, pending list, status, reboot,
task status), authenticates API tokens and tickets, and is strict where the real API is
(unknown parameters, malformed watchdog strings, stale digests). See tests/README.md.
"""

from .cluster import ApiError, Cluster, Vm
from .server import ProxmoxTestServer

__all__ = ["ApiError", "Cluster", "ProxmoxTestServer", "Vm"]
