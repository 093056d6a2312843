"""The AWX survey specs of docs/awx/ ask for real playbook variables, with matching types."""

import json
import re

import pytest

from .playbook_helpers import PLAYBOOK_SECTIONS, PLAYBOOKS, REPO, spec_vars

AWX = REPO / "docs" / "awx"
SURVEYS = sorted(AWX.glob("survey-*.json"))
TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
DOC = (REPO / "docs" / "playbooks.md").read_text()


def _questions():
    for path in SURVEYS:
        playbook = re.match(r"survey-(.+)\.json$", path.name).group(1)
        for question in json.loads(path.read_text())["spec"]:
            yield pytest.param(
                playbook, question, id="{}:{}".format(playbook, question["variable"])
            )


def test_surveys_exist_for_the_job_templates():
    assert {p.name for p in SURVEYS} >= {
        "survey-guests.json",
        "survey-kubevirt.json",
        "survey-site.json",
    }
    awx_md = (REPO / "docs" / "awx.md").read_text()
    for path in SURVEYS:
        assert "awx/{}".format(path.name) in awx_md
        spec = json.loads(path.read_text())
        assert spec["name"] and spec["description"] and spec["spec"]


def _choices(question):
    choices = question["choices"]
    return choices.split("\n") if isinstance(choices, str) else choices


@pytest.mark.parametrize(("playbook", "question"), list(_questions()))
def test_survey_question(playbook, question):
    assert (PLAYBOOKS / "{}.yml".format(playbook)).is_file()
    assert {"question_name", "variable", "type", "required"} <= set(question)
    assert question["type"] in TYPES
    variables = spec_vars(PLAYBOOK_SECTIONS[playbook])
    name = question["variable"]
    assert name in variables, "{} is not a variable of the {} playbook".format(name, playbook)
    assert "| `{}` |".format(name) in DOC
    var = variables[name]
    kind = question["type"]
    if kind == "integer":
        assert var["type"] == "int"
        for bound in ("min", "max"):
            if bound in var:
                assert question[bound] == var[bound], bound
        if "default" in var:
            assert question["default"] == var["default"]
    elif kind == "float":
        assert var["type"] == "float"
    elif kind == "multiplechoice":
        if var["type"] == "bool":
            assert sorted(_choices(question)) == ["false", "true"]
            assert question["default"] == str(var["default"]).lower()
        else:
            assert var["type"] == "str"
            assert _choices(question) == var["choices"]
            assert question["default"] == var["default"]
    elif kind == "multiselect":
        assert var["type"] == "list"
        assert _choices(question) == var["choices"]
        assert set(question.get("default", "").split("\n")) <= set(var["choices"])
    elif kind == "password":
        assert var["type"] == "str" and var.get("secret")
    else:  # text, textarea
        assert var["type"] in {"str", "list", "int_or_percent"}
        assert not var.get("secret"), "{} must be a password question".format(name)
        if var["type"] == "list" and var.get("separator") == "newline":
            assert kind == "textarea"
        if "default" in var and var["type"] == "str":
            assert question.get("default", "") == var["default"]
    if "default" not in var:
        assert question["required"], "{} is required by the playbook".format(name)
