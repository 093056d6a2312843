"""Unit tests of the pure probe logic: validation, desired state, detection time."""

import pytest

from ansible_collections.vmhealth.kvm.plugins.module_utils.errors import ValidationError, VmRejected
from ansible_collections.vmhealth.kvm.plugins.module_utils.probe import ProbePolicy, ProbeSpec


def params(**kwargs):
    base = {"probe": "readiness", "state": "present"}
    base.update(kwargs)
    return base


def test_guest_agent_ping_is_stored_exactly_as_given():
    spec = ProbeSpec.from_params(
        params(
            guest_agent_ping=True,
            initial_delay_seconds=120,
            period_seconds=10,
            timeout_seconds=5,
            failure_threshold=3,
            success_threshold=3,
        )
    )
    assert spec.body == {
        "guestAgentPing": {},
        "initialDelaySeconds": 120,
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
        "successThreshold": 3,
    }
    assert spec.field == "readinessProbe"


def test_unset_timings_are_not_defaulted():
    assert ProbeSpec.from_params(params(guest_agent_ping=True)).body == {"guestAgentPing": {}}


def test_http_get_full():
    spec = ProbeSpec.from_params(
        params(
            http_get={
                "port": "8080",
                "path": "/healthz",
                "scheme": "HTTPS",
                "host": None,
                "http_headers": [{"name": "X-Probe", "value": "1"}],
            }
        )
    )
    assert spec.body == {
        "httpGet": {
            "port": 8080,
            "path": "/healthz",
            "scheme": "HTTPS",
            "httpHeaders": [{"name": "X-Probe", "value": "1"}],
        }
    }


def test_named_port_is_kept_as_string():
    spec = ProbeSpec.from_params(params(tcp_socket={"port": "ssh", "host": None}))
    assert spec.body == {"tcpSocket": {"port": "ssh"}}


def test_exec_command():
    spec = ProbeSpec.from_params(
        params(probe="liveness", exec={"command": ["cat", "/tmp/healthy"]})
    )
    assert spec.body == {"exec": {"command": ["cat", "/tmp/healthy"]}}
    assert spec.field == "livenessProbe"
    assert spec.uses_guest_agent


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({}, "exactly one handler"),
        ({"guest_agent_ping": False}, "exactly one handler"),
        ({"guest_agent_ping": True, "tcp_socket": {"port": 22}}, "exactly one handler"),
        ({"exec": {"command": []}}, "exec.command"),
        ({"exec": {"command": [""]}}, "exec.command[0]"),
        ({"http_get": {"port": 0}}, "http_get.port"),
        ({"http_get": {"port": 65536}}, "http_get.port"),
        ({"http_get": {"port": "Not_A_Name"}}, "http_get.port"),
        ({"http_get": {"port": "a-very-long-port-name"}}, "http_get.port"),
        ({"http_get": {"port": "123-"}}, "http_get.port"),
        ({"http_get": {"port": 80, "path": "healthz"}}, "http_get.path"),
        (
            {"http_get": {"port": 80, "http_headers": [{"name": "bad name", "value": "x"}]}},
            "http_get.http_headers[0].name",
        ),
        ({"tcp_socket": {"port": True}}, "tcp_socket.port"),
        ({"guest_agent_ping": True, "initial_delay_seconds": -1}, "initial_delay_seconds"),
        ({"guest_agent_ping": True, "period_seconds": 0}, "period_seconds"),
        ({"guest_agent_ping": True, "timeout_seconds": 0}, "timeout_seconds"),
        ({"guest_agent_ping": True, "failure_threshold": 0}, "failure_threshold"),
        ({"guest_agent_ping": True, "success_threshold": 0}, "success_threshold"),
        ({"guest_agent_ping": True, "period_seconds": 2147483648}, "period_seconds"),
        (
            {"guest_agent_ping": True, "timeout_seconds": 10, "period_seconds": 10},
            "timeout_seconds",
        ),
        ({"guest_agent_ping": True, "timeout_seconds": 10}, "timeout_seconds"),
    ],
)
def test_invalid_probe_parameters_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as err:
        ProbeSpec.from_params(params(**kwargs))
    assert field in str(err.value)


def test_liveness_success_threshold_must_be_one():
    with pytest.raises(ValidationError, match="success_threshold: must be 1"):
        ProbeSpec.from_params(params(probe="liveness", guest_agent_ping=True, success_threshold=3))
    assert ProbeSpec.from_params(
        params(probe="liveness", guest_agent_ping=True, success_threshold=1)
    )


def test_absent_takes_no_handler():
    assert ProbeSpec.from_params(params(state="absent")).body is None
    with pytest.raises(ValidationError, match="guest_agent_ping: handlers are not used"):
        ProbeSpec.from_params(params(state="absent", guest_agent_ping=True))


@pytest.mark.parametrize(
    "timings, expected",
    [
        ({}, 10 * 3 + 1),
        ({"period_seconds": 10, "failure_threshold": 3, "timeout_seconds": 5}, 35),
        ({"period_seconds": 5, "failure_threshold": 1, "timeout_seconds": 1}, 6),
        ({"initial_delay_seconds": 300, "period_seconds": 2}, 2 * 3 + 1),
    ],
)
def test_detection_seconds(timings, expected):
    assert (
        ProbeSpec.from_params(params(guest_agent_ping=True, **timings)).detection_seconds()
        == expected
    )


def test_max_detection_seconds():
    spec = ProbeSpec.from_params(
        params(guest_agent_ping=True, period_seconds=10, timeout_seconds=5)
    )
    spec.check_detection(35)
    with pytest.raises(ValidationError, match=r"max_detection_seconds: .* 35 s .* 30 s"):
        spec.check_detection(30)
    assert ProbeSpec.from_params(params(state="absent")).detection_seconds() is None


def vm(spec=None, **template_spec):
    return {
        "metadata": {"name": "vm1", "namespace": "ns"},
        "spec": {"template": {"spec": template_spec}},
    }


def test_http_probe_needs_pod_network():
    policy = ProbePolicy(ProbeSpec.from_params(params(http_get={"port": 80})))
    policy.check(vm(networks=[{"name": "default", "pod": {}}]))
    policy.check(vm())  # no networks: KubeVirt attaches the pod network itself
    with pytest.raises(VmRejected, match="pod network"):
        policy.check(vm(networks=[{"name": "br", "multus": {"networkName": "br1"}}]))
    with pytest.raises(VmRejected, match="pod network"):
        policy.check(vm(domain={"devices": {"autoattachPodInterface": False}}))
    # Agent-based handlers do not need it.
    ProbePolicy(ProbeSpec.from_params(params(guest_agent_ping=True))).check(
        vm(networks=[{"name": "br", "multus": {"networkName": "br1"}}])
    )


def test_liveness_refused_on_paused_start():
    policy = ProbePolicy(ProbeSpec.from_params(params(probe="liveness", guest_agent_ping=True)))
    with pytest.raises(VmRejected, match="startStrategy Paused"):
        policy.check(vm(startStrategy="Paused"))
    ProbePolicy(ProbeSpec.from_params(params(guest_agent_ping=True))).check(
        vm(startStrategy="Paused")
    )


def test_apply_replaces_the_whole_probe_and_absent_removes_it():
    spec = {"readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 3}, "domain": {}}
    ProbePolicy(ProbeSpec.from_params(params(guest_agent_ping=True))).apply(spec)
    assert spec == {"readinessProbe": {"guestAgentPing": {}}, "domain": {}}
    ProbePolicy(ProbeSpec.from_params(params(state="absent"))).apply(spec)
    assert spec == {"domain": {}}
