"""Retention keeps daily totals; erasure anonymises or deletes, and is audited without personal data."""

import pytest

from conftest import ADA, API_KEY, BOB, make_settings, outlet_body
from owui_meter import clock, create_app
from owui_meter.retention import prune
from test_cli import run
from test_db import assert_rollups_match

H = {"Authorization": f"Bearer {API_KEY}"}
DAY = 86400


def test_pruning_keeps_daily_totals(data_dir, monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(clock, "time_fn", lambda: now[0])
    app = create_app(make_settings(data_dir, METER_RETENTION_DAYS=30))
    meter, client = app.config["METER"], app.test_client()
    for i in range(10):  # one answer a day for ten days, 40 days ago
        client.post("/api/v1/outlet", json=outlet_body(key=f"old{i}", cost=0.5, timestamp=now[0] - (40 - i) * DAY, generation_ids=[f"gen-{i}"]), headers=H)
    # plugin timestamps older than 7 days fall back to the receive time: move them back by hand
    with meter.db.write() as conn:
        for i in range(10):
            conn.execute("UPDATE events SET ts = ? WHERE key = ?", (int((now[0] - (40 - i) * DAY) * 1000), f"old{i}"))
        meter.ledger.rebuild_daily(conn)
    client.post("/api/v1/outlet", json=outlet_body(key="new", cost=1.0), headers=H)
    totals_before = meter.db.query_one("SELECT sum(cost_nano) AS c, sum(answers) AS a FROM usage_daily")
    assert prune(meter) == 10
    assert [r["key"] for r in meter.db.query("SELECT key FROM events")] == ["new"]
    assert meter.db.query_one("SELECT count(*) AS n FROM generations")["n"] == 0
    assert meter.db.query_one("SELECT sum(cost_nano) AS c, sum(answers) AS a FROM usage_daily") == totals_before == {"c": 6_000_000_000, "a": 11}
    assert int(meter.db.query_one("SELECT value FROM meta WHERE key = 'retention.pruned_before'")["value"]) == int((now[0] - 30 * DAY) * 1000)
    assert_rollups_match(meter.db)  # the cost-state rollup lets the pruned answers go with them
    app.config["METER"].stop()


def test_no_retention_prunes_nothing(meter):
    assert prune(meter) == 0


def seed(client):
    client.post("/api/v1/outlet", json=outlet_body(key="a1", user=ADA, cost=1), headers=H)
    client.post("/api/v1/outlet", json=outlet_body(key="a2", user=ADA, cost=2), headers=H)
    client.post("/api/v1/outlet", json=outlet_body(key="b1", user=BOB, cost=4), headers=H)


def test_anonymise_keeps_totals_and_drops_identity(client, meter, admin_headers):
    seed(client)
    response = client.delete(f"/api/v1/users/{ADA['id']}", query_string={"mode": "anonymise"}, headers=admin_headers)
    assert response.status_code == 200 and response.get_json() == {"mode": "anonymise", "answers": 2}
    assert meter.db.query_one("SELECT 1 AS x FROM users WHERE id = ? OR email = ?", (ADA["id"], ADA["email"])) is None
    dump = "\n".join(str(r) for t in ("events", "usage_daily", "spend", "users", "audit_log") for r in meter.db.query(f"SELECT * FROM {t}"))
    assert ADA["id"] not in dump and ADA["email"] not in dump and ADA["name"] not in dump
    assert meter.db.query_one("SELECT sum(cost_nano) AS c FROM usage_daily")["c"] == 7_000_000_000
    assert meter.db.query_one("SELECT sum(cost_nano) AS c FROM events")["c"] == 7_000_000_000
    [entry] = meter.db.query("SELECT action FROM audit_log")
    assert entry["action"] == "user.anonymise"


def test_delete_removes_the_rows(client, meter, admin_headers):
    seed(client)
    assert client.delete(f"/api/v1/users/{ADA['id']}", query_string={"mode": "delete"}, headers=admin_headers).status_code == 200
    assert meter.db.query_one("SELECT sum(cost_nano) AS c FROM usage_daily")["c"] == 4_000_000_000
    assert [r["key"] for r in meter.db.query("SELECT key FROM events")] == ["b1"]
    assert meter.db.query_one("SELECT count(*) AS n FROM users")["n"] == 1


@pytest.mark.parametrize("query, status", [({}, 400), ({"mode": "shred"}, 400), ({"mode": "delete"}, 404)])
def test_bad_erasure_requests(client, meter, admin_headers, query, status):
    seed(client)
    response = client.delete("/api/v1/users/nobody" if status == 404 else f"/api/v1/users/{ADA['id']}", query_string=query, headers=admin_headers)
    assert response.status_code == status
    assert meter.db.query_one("SELECT count(*) AS n FROM events")["n"] == 3


def test_erase_from_the_cli(data_dir, client, meter):
    seed(client)
    meter.stop()
    result = run(data_dir, "erase-user", BOB["id"], "--mode", "delete")
    assert result.returncode == 0 and "1 answers" in result.stdout
    missing = run(data_dir, "erase-user", "nobody", "--mode", "delete")
    assert missing.returncode == 1


def test_anonymising_the_same_person_twice_adds_up(client, meter, admin_headers):
    client.post("/api/v1/outlet", json=outlet_body(key="a1", user=ADA, cost=1), headers=H)
    client.delete(f"/api/v1/users/{ADA['id']}", query_string={"mode": "anonymise"}, headers=admin_headers)
    client.post("/api/v1/outlet", json=outlet_body(key="a2", user=ADA, cost=2), headers=H)  # they come back
    assert client.delete(f"/api/v1/users/{ADA['id']}", query_string={"mode": "anonymise"}, headers=admin_headers).status_code == 200
    for table in ("events", "usage_daily"):
        assert meter.db.query_one(f"SELECT sum(cost_nano) AS c FROM {table}")["c"] == 3_000_000_000, table
    month = meter.db.query_one("SELECT cost_nano FROM spend WHERE period = 'month'")
    assert month["cost_nano"] == 3_000_000_000  # budget counters keep the money too
    assert meter.db.query_one("SELECT count(DISTINCT user_id) AS n FROM events")["n"] == 1


def test_anonymise_keeps_group_membership_under_the_pseudonym(client, meter, admin_headers):
    from owui_meter.erasure import pseudonym

    client.post("/api/v1/outlet", json=outlet_body(key="a1", user=ADA, cost=1), headers=H)
    with meter.db.write() as conn:
        conn.execute("INSERT INTO groups (id, name, synced) VALUES ('g1', 'Team', 0)")
        conn.execute("INSERT INTO group_members (group_id, user_id) VALUES ('g1', ?)", (ADA["id"],))
    client.delete(f"/api/v1/users/{ADA['id']}", query_string={"mode": "anonymise"}, headers=admin_headers)
    assert meter.db.query("SELECT group_id, user_id FROM group_members") == [{"group_id": "g1", "user_id": pseudonym(meter, ADA["id"])}]
    client.delete(f"/api/v1/users/{pseudonym(meter, ADA['id'])}", query_string={"mode": "delete"}, headers=admin_headers)
    assert meter.db.query("SELECT * FROM group_members") == []
