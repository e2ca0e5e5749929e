"""Erasure leaves no personal data behind: not in the audit log, not in top-up notes, and the
pseudonym is a keyed hash that only this meter's data directory can reproduce."""

import hashlib
import json
import os
import stat

from conftest import ADA, API_KEY, BOB, make_settings, outlet_body
from owui_meter import create_app
from owui_meter.erasure import pseudonym

H = {"Authorization": f"Bearer {API_KEY}"}
NOTE = "paid cash; Ada's phone +44 20 7946 0958"


def every_cell(meter) -> str:
    """Every value of every table, as one text to search."""
    tables = [r["name"] for r in meter.db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return "\n".join(json.dumps(row, default=str) for table in tables for row in meter.db.query(f"SELECT * FROM {table}"))


def history(client, admin_headers):
    """Ada's answers, a budget and a top-up with a note: every place an admin names her."""
    client.post("/api/v1/outlet", json=outlet_body(key="a1", user=ADA, cost=1), headers=H)
    client.post("/api/v1/outlet", json=outlet_body(key="b1", user=BOB, cost=4), headers=H)
    created = client.post("/api/v1/budgets", json={"scope": "user", "scope_id": ADA["id"], "period": "month", "limit_usd": 20}, headers=admin_headers)
    assert created.status_code == 201
    topup = client.post(f"/api/v1/users/{ADA['id']}/topups", json={"amount_usd": 5, "note": NOTE}, headers=admin_headers)
    assert topup.status_code == 201
    assert ADA["id"] in every_cell(client.application.config["METER"])


def test_delete_leaves_no_raw_user_id_anywhere(client, meter, admin_headers):
    history(client, admin_headers)
    actions_before = [r["action"] for r in meter.db.query("SELECT action FROM audit_log ORDER BY id")]
    assert client.delete(f"/api/v1/users/{ADA['id']}", query_string={"mode": "delete"}, headers=admin_headers).status_code == 200
    cells = every_cell(meter)
    for personal in (ADA["id"], ADA["email"], ADA["name"], NOTE):
        assert personal not in cells, personal
    assert BOB["id"] in cells  # Bob is untouched
    # what the admins did is still on record, naming the pseudonym
    entries = meter.db.query("SELECT action, detail FROM audit_log ORDER BY id")
    assert [e["action"] for e in entries] == actions_before + ["user.delete"]
    alias = pseudonym(meter, ADA["id"])
    assert json.loads(entries[0]["detail"])["scope_id"] == alias
    assert json.loads(entries[1]["detail"])["user_id"] == alias
    assert json.loads(entries[-1]["detail"]) == {"user": alias, "answers": 1}


def test_anonymise_drops_free_text_top_up_notes(client, meter, admin_headers):
    history(client, admin_headers)
    balance_before = meter.budgets.balance(meter.db.query, ADA["id"])
    assert client.delete(f"/api/v1/users/{ADA['id']}", query_string={"mode": "anonymise"}, headers=admin_headers).status_code == 200
    cells = every_cell(meter)
    for personal in (ADA["id"], ADA["email"], ADA["name"], NOTE, "phone"):
        assert personal not in cells, personal
    alias = pseudonym(meter, ADA["id"])
    [entry] = meter.db.query("SELECT user_id, amount_nano, note FROM balance_entries")
    assert entry == {"user_id": alias, "amount_nano": 5_000_000_000, "note": ""}  # the money stays
    assert meter.budgets.balance(meter.db.query, alias) == balance_before


def test_pseudonym_is_keyed_and_stable_across_restarts(data_dir, tmp_path, admin_headers):
    app = create_app(make_settings(data_dir))
    meter = app.config["METER"]
    app.test_client().post("/api/v1/outlet", json=outlet_body(key="a1", user=ADA, cost=1), headers=H)
    app.test_client().delete(f"/api/v1/users/{ADA['id']}", query_string={"mode": "anonymise"}, headers=admin_headers)
    [first] = [r["user_id"] for r in meter.db.query("SELECT DISTINCT user_id FROM events")]
    unkeyed = hashlib.sha256(ADA["id"].encode()).hexdigest()[:16]
    assert first.startswith("erased-") and unkeyed not in first  # not reproducible from the id alone
    secrets_file = data_dir / "secrets.json"
    assert "PSEUDONYM_KEY" in json.loads(secrets_file.read_text())
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
    meter.stop()

    again = create_app(make_settings(data_dir))  # a restart: Ada comes back and is anonymised again
    meter = again.config["METER"]
    again.test_client().post("/api/v1/outlet", json=outlet_body(key="a2", user=ADA, cost=2), headers=H)
    again.test_client().delete(f"/api/v1/users/{ADA['id']}", query_string={"mode": "anonymise"}, headers=admin_headers)
    assert [r["user_id"] for r in meter.db.query("SELECT DISTINCT user_id FROM events")] == [first]
    assert meter.db.query_one("SELECT sum(cost_nano) AS cost_nano FROM spend WHERE user_id = ? AND period = 'month'", (first,))["cost_nano"] == 3_000_000_000
    meter.stop()

    other_dir = tmp_path / "other"
    other = create_app(make_settings(other_dir))  # another meter, another key: another pseudonym
    assert pseudonym(other.config["METER"], ADA["id"]) != first
    other.config["METER"].stop()
