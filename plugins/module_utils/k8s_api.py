# Copyright: (c) 2026, vmhealth.kvm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes API access for the vmhealth.kvm cluster modules.

This is the only layer that talks to the API server. Authentication, TLS and the HTTP
client come from kubernetes.core (``get_api_client``); this layer adds what fleet-wide
modules need on top: plain-dict JSON responses (no per-field object wrapping, which is
slow for thousands of objects), paginated LISTs, bounded retries with back-off on 429
and 5xx and dropped connections, and one error type (:class:`ApiError`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ApiError

try:
    from kubernetes.dynamic.exceptions import DynamicApiError
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
except ImportError:  # reported by AnsibleK8SModule's requirement check
    DynamicApiError = Urllib3HTTPError = None

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

#: Statuses worth retrying as they are: throttling and transient server errors.
RETRY_STATUSES = frozenset([429, 500, 502, 503, 504])
#: The largest page a LIST asks for.
PAGE_SIZE = 500
DEFAULT_RETRIES = 5
DEFAULT_TIMEOUT = 60


def resource_path(group_version, plural, namespace=None, name=None, subresource=None):
    """Return the URL path of a resource collection, object or subresource.

    >>> resource_path("kubevirt.io/v1", "virtualmachines", "ns1", "vm1")
    '/apis/kubevirt.io/v1/namespaces/ns1/virtualmachines/vm1'
    """
    prefix = "/api/v1" if group_version == "v1" else "/apis/" + group_version
    parts = [prefix]
    if namespace:
        parts.append("namespaces/" + namespace)
    parts.append(plural)
    if name:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


def _status_body(raw):
    """Decode a Kubernetes Status body; other bodies (e.g. "404 page not found") give {}."""
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(headers, body, fallback):
    """Seconds to wait before retrying: the Retry-After header, then the Status details."""
    value = None
    if headers is not None:
        value = headers.get("Retry-After")
    if value is None:
        value = (body.get("details") or {}).get("retryAfterSeconds")
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return fallback


class KubeApi:
    """Plain-JSON requests through kubernetes.core's API client, with bounded retries.

    ``client`` is what ``kubernetes.core...k8s.client.get_api_client()`` returns.
    The request counters (``requests`` by verb) let modules report how much they did.
    """

    backoff_base = 0.25  # seconds; doubled per attempt, capped by backoff_cap
    backoff_cap = 8.0
    retry_after_cap = 30.0

    def __init__(self, client, retries=DEFAULT_RETRIES, timeout=DEFAULT_TIMEOUT, sleep=time.sleep):
        self._dynamic = client.client
        self.retries = retries
        self.timeout = timeout
        self._sleep = sleep

    def request(
        self, method, path, body=None, query=None, content_type=None, retry_disconnect=True
    ):
        """Send one request and return the decoded JSON body (``{}`` when empty).

        Retries up to ``self.retries`` times on 429/5xx and, when ``retry_disconnect``,
        on connections that failed or were dropped. Raises :class:`ApiError` otherwise.
        """
        query_params = [(k, v) for k, v in (query or {}).items() if v is not None]
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._dynamic.request(
                    method,
                    path,
                    body=body,
                    query_params=query_params,
                    content_type=content_type,
                    serialize=False,
                    _request_timeout=self.timeout,
                )
                data = response.data
                return json.loads(data) if data else {}
            except DynamicApiError as exc:
                status_body = _status_body(exc.body)
                delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
                if exc.status in RETRY_STATUSES and attempt <= self.retries:
                    if exc.status == 429:
                        delay = min(
                            self.retry_after_cap, _retry_after(exc.headers, status_body, delay)
                        )
                    self._sleep(delay)
                    continue
                message = status_body.get("message") or "HTTP {0} {1}".format(
                    exc.status, exc.reason
                )
                if attempt > 1:
                    message += " (after {0} attempts)".format(attempt)
                raise ApiError(
                    message, status=exc.status, reason=status_body.get("reason"), body=status_body
                ) from None
            except (Urllib3HTTPError, OSError) as exc:
                # urllib3 wraps dropped connections in ProtocolError/MaxRetryError.
                if retry_disconnect and attempt <= self.retries:
                    self._sleep(min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))
                    continue
                raise ApiError("{0} {1} failed: {2}".format(method, path, exc), status=0) from None

    def get(self, path):
        """GET one object; raises ApiError (status 404 when it does not exist)."""
        return self.request("GET", path)

    def list_pages(self, path, label_selector=None, field_selector=None, limit=PAGE_SIZE):
        """Yield the items of a LIST page by page (``limit`` objects at a time).

        Pages keep memory bounded: the caller can drop each page once it has taken what it
        needs from it.
        """
        token = None
        while True:
            page = self.request(
                "GET",
                path,
                query={
                    "labelSelector": label_selector,
                    "fieldSelector": field_selector,
                    "limit": limit,
                    "continue": token,
                },
            )
            yield page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def merge_patch(self, path, patch):
        """PATCH with a JSON merge patch (RFC 7386) and return the stored object."""
        return self.request("PATCH", path, body=patch, content_type=MERGE_PATCH)

    def put(self, path, body, retry_disconnect=True):
        """PUT a body (an update, or a KubeVirt lifecycle subresource call)."""
        return self.request("PUT", path, body=body, retry_disconnect=retry_disconnect)
