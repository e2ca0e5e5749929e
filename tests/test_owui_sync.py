"""Users and groups from Open WebUI's admin API, against a fake Open WebUI on loopback."""

import pytest

from conftest import make_settings
from fake_openwebui import ENGINEERING, FakeOpenWebUI
from owui_meter import create_app
from owui_meter.owui_sync import SyncError


@pytest.fixture
def owui():
    with FakeOpenWebUI() as server:
        yield server


@pytest.fixture
def app(data_dir, owui):
    app = create_app(make_settings(data_dir, OPENWEBUI_URL=owui.url, OPENWEBUI_API_KEY=owui.api_key))
    yield app
    app.config["METER"].stop()


def members(meter):
    return sorted((r["group_id"], r["user_id"]) for r in meter.db.query("SELECT * FROM group_members"))


def test_sync_brings_users_groups_and_memberships(client, meter, admin_headers, owui):
    response = client.post("/api/v1/sync/openwebui", headers=admin_headers)
    assert response.status_code == 200 and response.get_json()["users"] == 2
    users = {r["email"] for r in meter.db.query("SELECT email FROM users")}
    assert users == {"ada@example.com", "bob@example.com"}  # before their first answer
    assert members(meter) == [(ENGINEERING, "22d1d051-00a9-4e78-a612-8ae9d4005987")]
    assert meter.db.query_one("SELECT name FROM groups")["name"] == "Engineering"
    assert client.get("/healthcheck").get_json()["openwebui_sync"]["state"] == "ok"


def test_paging_through_many_users(meter, owui):
    owui.users = [{"id": f"u{i}", "email": f"u{i}@example.com", "name": f"U{i}", "role": "user", "group_ids": [ENGINEERING] if i % 2 else []} for i in range(75)]
    assert meter.owui_sync.sync()["users"] == 75
    assert len(members(meter)) == 37
    assert sum(1 for p in owui.requests_seen if p.startswith("/api/v1/users/")) == 3


def test_membership_changes_replace_the_old_ones(meter, owui):
    meter.owui_sync.sync()
    owui.users[0]["group_ids"] = []
    owui.users[1]["group_ids"] = [ENGINEERING]
    meter.owui_sync.sync()
    assert members(meter) == [(ENGINEERING, "91742e30-b09f-44e6-83e0-f91d730df38c")]


@pytest.mark.parametrize("mode", ["500", "down", "wrong-key"])
def test_a_failed_sync_keeps_the_last_known_memberships(client, meter, admin_headers, owui, mode):
    meter.owui_sync.sync()
    before = members(meter)
    if mode == "down":
        owui.server.shutdown()
        owui.server.server_close()
    elif mode == "wrong-key":
        owui.api_key = "rotated"
    else:
        owui.set_mode("500")
    with pytest.raises(SyncError):
        meter.owui_sync.sync()
    assert members(meter) == before
    health = client.get("/healthcheck").get_json()["openwebui_sync"]
    assert health["state"] == "failing" and health["error"]["error"]
    response = client.post("/api/v1/sync/openwebui", headers=admin_headers)
    assert response.status_code == 502


def test_sync_needs_configuration(data_dir, admin_headers):
    app = create_app(make_settings(data_dir))
    response = app.test_client().post("/api/v1/sync/openwebui", headers=admin_headers)
    assert response.status_code == 400 and "OPENWEBUI_URL" in response.get_json()["error"]
    app.config["METER"].stop()
