"""kube_test_server: a strict Kubernetes API TEST DOUBLE for vmhealth.kvm's tests.

This is NOT a Kubernetes API server. It is a small HTTPS server, written for tests, that speaks
enough of the Kubernetes and KubeVirt APIs for the unmodified ``kubernetes`` Python client
(CoreV1Api and DynamicClient with discovery, as used by kubernetes.core) to work against it,
because no real kube-apiserver can run on the build machines.

Served: core/v1 namespaces and pods; kubevirt.io/v1 virtualmachines and
virtualmachineinstances; subresources.kubevirt.io/v1 virtualmachines/{start,stop,restart};
template.openshift.io/v1 templates; monitoring.coreos.com/v1 prometheusrules;
monitoring.openshift.io/v1 alertingrules. Custom resources are validated against the real CRD
schemas in ``<repo>/../shared/crds`` (or ``$VMHEALTH_CRD_DIR``, or our fallback schemas), always as
strictly as ``fieldValidation=Strict``. See tests/README.md for what is simplified.

Usage::

    from kube_test_server import KubeTestServer

    with KubeTestServer() as server:
        client = kubernetes.config.new_client_from_config(str(server.kubeconfig_path))
        ...
        assert server.writes(since=mark) == 0
"""

from .server import KubeTestServer

__all__ = ["KubeTestServer"]
