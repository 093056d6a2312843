"""Harness for unit tests of module entry points: exit_json/fail_json raise instead of exiting."""

import pytest


class Exit(Exception):
    """Raised by AnsibleModule.exit_json; ``args[0]`` is the result."""


class Fail(Exception):
    """Raised by AnsibleModule.fail_json; ``args[0]`` is the result with ``msg``."""


@pytest.fixture
def module_calls(monkeypatch):
    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    from ansible.module_utils import basic

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
