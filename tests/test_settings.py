"""Settings: strict parsing, *_FILE secrets, masking, and every setting documented."""

import re

import pytest

from conftest import REPO, meter_env
from owui_meter import settings
from owui_meter.cli import settings_env_example, settings_markdown
from owui_meter.settings import SETTINGS, SettingsError
from test_cli import run


def test_defaults():
    loaded = settings.load({})
    assert (loaded.METER_HOST, loaded.METER_PORT, loaded.WORKER, loaded.METER_DATA_DIR) == ("127.0.0.1", 45000, 8, "./data")
    assert loaded.API_KEY is None and loaded.OPENROUTER_BASE_URL == "https://openrouter.ai/api/v1"


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"METER_PORT": "http"}, "METER_PORT must be a whole number"),
        ({"METER_PORT": "70000"}, "METER_PORT must be at most 65535"),
        ({"WORKER": "0"}, "WORKER must be at least 1"),
        ({"OPENROUTER_BASE_URL": "openrouter.ai"}, "OPENROUTER_BASE_URL must be an http"),
        ({"METER_TIMEZONE": "Mars/Olympus"}, "METER_TIMEZONE must be an IANA time zone"),
        ({"METER_LOG_LEVEL": "LOUD"}, "METER_LOG_LEVEL must be one of"),
        ({"JWT_SECRET": "short"}, "JWT_SECRET must be at least 32"),
        ({"API_KEY": "abc"}, "API_KEY must be at least 16"),
        ({"PASSWORD_HASH": "hunter2"}, "PASSWORD_HASH must be an argon2 hash"),
    ],
)
def test_invalid_values_name_the_variable(env, fragment):
    with pytest.raises(SettingsError, match=fragment):
        settings.load(env)


def test_secret_from_file(tmp_path):
    secret = tmp_path / "api_key"
    secret.write_text("from-a-docker-secret-0123\n")
    loaded = settings.load({"API_KEY_FILE": str(secret)})
    assert loaded.API_KEY == "from-a-docker-secret-0123" and loaded.origin("API_KEY") == "file"
    with pytest.raises(SettingsError, match="either API_KEY or API_KEY_FILE"):
        settings.load({"API_KEY_FILE": str(secret), "API_KEY": "also-set-here-0123456"})
    with pytest.raises(SettingsError, match="API_KEY_FILE: cannot read"):
        settings.load({"API_KEY_FILE": str(tmp_path / "missing")})


def test_settings_command_masks_secrets(data_dir):
    result = run(data_dir, "settings", OPENROUTER_API_KEY="sk-or-very-secret-value")
    assert result.returncode == 0
    assert "sk-or-very-secret-value" not in result.stdout and meter_env(data_dir)["API_KEY"] not in result.stdout
    assert "OPENROUTER_API_KEY = ****" in result.stdout
    for setting in SETTINGS:
        assert setting.env in result.stdout and setting.help in result.stdout


def test_invalid_setting_stops_the_start_with_exit_code_2(data_dir):
    result = run(data_dir, "serve", METER_PORT="not-a-port")
    assert result.returncode == 2
    assert "METER_PORT" in result.stderr and "Traceback" not in result.stderr


def test_every_setting_is_documented_in_the_readme_and_env_example():
    declared = {s.env for s in SETTINGS}
    readme = (REPO / "README.md").read_text()
    example = (REPO / "meter.env.example").read_text()
    for name, names in (("README.md", set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", readme, re.M))),
                        ("meter.env.example", set(re.findall(r"^# ([A-Z][A-Z0-9_]*)=", example, re.M)))):
        assert names == declared, f"{name}: missing {sorted(declared - names)}, unknown {sorted(names - declared)}"
    # and word for word what the declarations say (help text and defaults)
    assert settings_markdown() in readme, "README settings table is stale: paste `owui-meter settings --format markdown`"
    assert example == settings_env_example(), "meter.env.example is stale: run `owui-meter settings --format env > meter.env.example`"


def test_settings_are_declared_once():
    names = [s.env for s in SETTINGS]
    assert len(names) == len(set(names))
    assert all(s.help.endswith(".") or s.help.endswith(")") for s in SETTINGS)


def test_env_example_opens_with_what_most_teams_set():
    from owui_meter.cli import COMMON_SETTINGS

    example = (REPO / "meter.env.example").read_text()
    assert tuple(re.findall(r"^# ([A-Z][A-Z0-9_]*)=", example, re.M)[:5]) == COMMON_SETTINGS
    assert example.index("# === what most teams set ===") < example.index("# === core ===")
