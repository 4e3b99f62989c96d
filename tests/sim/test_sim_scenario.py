"""Scenario validation: hyperhive/sim/scenario.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hyperhive.errors import ConfigError
from hyperhive.sim import Scenario, TextBlock, ToolUseBlock

EXAMPLE = Path(__file__).parents[2] / "hyperhive" / "sim" / "scenarios" / "example.toml"


def test_empty_scenario_answers_ok() -> None:
    scenario = Scenario.model_validate({})
    assert scenario.rules == []
    assert scenario.default.blocks() == [TextBlock(type="text", text="ok")]


def test_rules_get_ids_in_order() -> None:
    scenario = Scenario.model_validate({"rules": [{"text": "a"}, {"id": "named", "text": "b"}, {}]})
    assert [r.id for r in scenario.rules] == ["rule-1", "named", "rule-3"]


def test_duplicate_rule_ids_are_refused() -> None:
    with pytest.raises(ValidationError, match="duplicate rule id 'x'"):
        Scenario.model_validate({"rules": [{"id": "x"}, {"id": "x"}]})


def test_unknown_key_names_the_key() -> None:
    text = '[[rules]]\nid = "a"\nwhen_usr_contains = "hi"\n'
    with pytest.raises(ConfigError) as info:
        Scenario.parse(text, source="s.toml")
    assert "s.toml: unknown key 'rules.0.when_usr_contains'" in str(info.value)


def test_unknown_key_in_a_reply_block() -> None:
    data = {"rules": [{"reply": [{"type": "tool_use", "name": "x", "inputs": {}}]}]}
    with pytest.raises(ValidationError, match="inputs"):
        Scenario.model_validate(data)


def test_only_one_kind_of_answer() -> None:
    with pytest.raises(
        ValidationError, match=r"only one of text, reply, error \(got text, reply\)"
    ):
        Scenario.model_validate(
            {"rules": [{"text": "a", "reply": [{"type": "text", "text": "b"}]}]}
        )
    with pytest.raises(ValidationError, match=r"\(got text, error\)"):
        Scenario.model_validate(
            {"default": {"text": "a", "error": {"status": 500, "message": "x"}}}
        )


def test_bad_regex_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        Scenario.model_validate({"rules": [{"when_user_regex": "("}]})


def test_error_type_follows_status() -> None:
    scenario = Scenario.model_validate(
        {
            "rules": [
                {"error": {"status": 429, "message": "slow down"}},
                {"error": {"status": 418, "message": "teapot"}},
                {"error": {"status": 400, "type": "custom_error", "message": "x"}},
            ]
        }
    )
    types = [r.error.error_type for r in scenario.rules if r.error is not None]
    assert types == ["rate_limit_error", "invalid_request_error", "custom_error"]


def test_when_compact_is_a_shorthand_for_when_kind() -> None:
    scenario = Scenario.model_validate(
        {"rules": [{"when_compact": True}, {"when_compact": False}, {}]}
    )
    assert [r.when_kind for r in scenario.rules] == ["compact", "main", "main"]
    with pytest.raises(ValidationError, match="contradicts when_kind"):
        Scenario.model_validate({"rules": [{"when_compact": True, "when_kind": "any"}]})
    # a dumped scenario (which carries both keys) loads back
    assert Scenario.model_validate_json(scenario.model_dump_json()) == scenario


def test_load_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text(
        '[default]\ntext = "hi"\n\n[[rules]]\nagent = "a*"\n'
        '[[rules.reply]]\ntype = "tool_use"\nname = "Bash"\ninput = { command = "ls" }\n'
    )
    loaded = Scenario.load(toml)
    assert loaded.default.text == "hi"
    assert loaded.rules[0].blocks() == [
        ToolUseBlock(type="tool_use", name="Bash", input={"command": "ls"})
    ]
    js = tmp_path / "s.json"
    js.write_text(loaded.model_dump_json(exclude_none=True))
    assert Scenario.load(js) == loaded


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("s.yaml", "", "end in .toml or .json"),
        ("s.toml", "[[rules]\n", "not valid TOML"),
        ("s.json", "{", "not valid JSON"),
    ],
)
def test_load_errors_are_config_errors(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        Scenario.load(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read scenario"):
        Scenario.load(tmp_path / "nope.toml")


def test_shipped_example_is_valid() -> None:
    scenario = Scenario.load(EXAMPLE)
    assert [r.id for r in scenario.rules][:2] == ["manager-delegates", "manager-sent"]
    assert scenario.rules[-1].when_kind == "compact"
