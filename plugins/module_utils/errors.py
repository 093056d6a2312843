# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exception types shared by the vmhealth.kvm modules.

Expected failures are raised deep in module_utils as one of these and turned into
``fail_json`` exactly once, in the module's ``main()``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class VmHealthError(Exception):
    """An expected failure with a message meant for the user."""


class ValidationError(VmHealthError):
    """Invalid module input, detected before any API request."""


class ApiError(VmHealthError):
    """A Kubernetes API request failed for good (after any retries).

    ``status`` is the HTTP status (0 when the connection failed) and ``reason`` the
    Kubernetes Status reason (NotFound, Conflict, Invalid, ...) when the server sent one.
    """

    def __init__(self, message, status=0, reason=None, body=None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.body = body or {}


class VmRejected(VmHealthError):
    """One object cannot take the desired change; the others still proceed."""
