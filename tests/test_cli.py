"""The command line: hash-password, token create, api-key, and bad invocations."""

import os
import subprocess
import sys

import requests

from conftest import API_KEY, JWT_SECRET, REPO, meter_env
from owui_meter.auth import decode_token, verify_password


def run(data_dir, *args, stdin="", **extra):
    env = {**os.environ, **meter_env(data_dir, **extra), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "owui_meter", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)


def test_hash_password_reads_stdin(data_dir):
    result = run(data_dir, "hash-password", stdin="correct horse battery\n")
    assert result.returncode == 0
    hashed = result.stdout.strip()
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse battery")
    assert "correct horse" not in result.stderr + result.stdout.replace(hashed, "")


def test_hash_password_refuses_short_passwords(data_dir):
    result = run(data_dir, "hash-password", stdin="short\n")
    assert result.returncode == 2 and "8 characters" in result.stderr


def test_token_create_prints_a_working_token_last(data_dir, live_meter):
    result = run(data_dir, "token", "create", "--days", "2", "--name", "ci-bot")
    assert result.returncode == 0
    token = result.stdout.strip().splitlines()[-1]
    claims = decode_token(token, JWT_SECRET)
    assert claims["sub"] == "ci-bot"
    assert 2 * 86400 - 60 <= claims["exp"] - claims["iat"] <= 2 * 86400
    assert requests.get(live_meter.url + "/api/v1/events", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200


def test_tokens_are_listed_and_revoked_one_by_one_beside_a_running_server(data_dir, live_meter):
    def events_with(token):
        return requests.get(live_meter.url + "/api/v1/events", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code

    tokens = {name: run(data_dir, "token", "create", "--name", name).stdout.strip().splitlines()[-1] for name in ("grafana", "ci-bot")}
    assert [events_with(t) for t in tokens.values()] == [200, 200]
    listed = run(data_dir, "token", "list").stdout.splitlines()
    assert [line.split()[1:2] + line.split()[-1:] for line in listed[1:]] == [["grafana", "valid"], ["ci-bot", "valid"]]
    assert tokens["grafana"] not in "".join(listed)  # the list shows ids, never the tokens
    grafana_id = decode_token(tokens["grafana"], JWT_SECRET)["jti"]
    revoked = run(data_dir, "token", "revoke", grafana_id[:10])
    assert revoked.returncode == 0 and revoked.stdout.strip() == "revoked 1 token"
    assert events_with(tokens["grafana"]) == 401 and events_with(tokens["ci-bot"]) == 200
    assert [line.split()[-1] for line in run(data_dir, "token", "list").stdout.splitlines()[1:]] == ["revoked", "valid"]
    assert run(data_dir, "token", "revoke", "ci-bot").stdout.strip() == "revoked 1 token"
    assert events_with(tokens["ci-bot"]) == 401
    again = run(data_dir, "token", "revoke", "ci-bot")
    assert again.returncode == 1 and "no valid token" in again.stderr
    short = run(data_dir, "token", "revoke", grafana_id[:3])  # too short to name an id, and no such name
    assert short.returncode == 1


def test_token_create_rejects_bad_days(data_dir):
    result = run(data_dir, "token", "create", "--days", "0")
    assert result.returncode == 2 and "--days" in result.stderr


def test_api_key_prints_the_key(data_dir):
    assert run(data_dir, "api-key").stdout.strip() == API_KEY


def test_unknown_command_is_an_error(data_dir):
    result = run(data_dir, "frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_admin_add_and_passwd(data_dir, app):
    from owui_meter.auth import verify_password

    meter = app.config["METER"]
    added = run(data_dir, "admin", "add", "grace", stdin="grace-password-1\n")
    assert added.returncode == 0, added.stderr
    again = run(data_dir, "admin", "add", "grace", stdin="grace-password-1\n")
    assert again.returncode == 1 and "exists" in again.stderr
    changed = run(data_dir, "admin", "passwd", "grace", stdin="grace-password-2\n")
    assert changed.returncode == 0
    row = meter.db.query_one("SELECT password_hash FROM admins WHERE username = 'grace'")
    assert verify_password(row["password_hash"], "grace-password-2") and not verify_password(row["password_hash"], "grace-password-1")
    assert run(data_dir, "admin", "passwd", "nobody", stdin="long-enough-pw\n").returncode == 1
    assert run(data_dir, "admin", "add", "shorty", stdin="short\n").returncode == 2


import pytest  # noqa: E402


@pytest.mark.parametrize("name, template, named", [
    ("METER_BLOCK_MESSAGE", "You used {spent} of {budget}.", "{budget}"),
    ("METER_BLOCK_MESSAGE", "Renews {renews} for {0}.", "{0}"),
    ("METER_BLOCK_MESSAGE", "Used {spent.real}.", "{spent.real}"),
    ("METER_BLOCK_MESSAGE", "Used {spent", "{spent"),
    ("METER_BLOCK_MESSAGE", "Used {spent:d}.", "{spent:d}"),
    ("METER_ALLOWANCE_BLOCK_MESSAGE", "Used {spent} until {renews}.", "{renews}"),
])
def test_a_block_message_with_an_unknown_placeholder_stops_the_start(data_dir, name, template, named):
    """Found at start (exit 2, naming the variable and the placeholder), not when someone is blocked."""
    result = run(data_dir, "settings", **{name: template})
    assert result.returncode == 2
    assert name in result.stderr and named in result.stderr


def test_serve_refuses_to_start_with_an_unknown_placeholder(data_dir):
    from conftest import free_port

    result = run(data_dir, "serve", METER_BLOCK_MESSAGE="Over {budget}!", METER_PORT=str(free_port()))
    assert result.returncode == 2 and "METER_BLOCK_MESSAGE" in result.stderr and "{budget}" in result.stderr
    assert not (data_dir / "meter.db").exists()  # nothing started


def test_a_block_message_with_known_placeholders_is_accepted(data_dir):
    result = run(data_dir, "settings", METER_BLOCK_MESSAGE="{spent} of {limit} ({period}); renews {renews}. {{braces}} stay")
    assert result.returncode == 0 and "{{braces}}" in result.stdout
