"""The Events page's totals row: for every filter, the figures it shows are the ledger's, whichever
table answers (daily rollups, the cost-state rollup or the events); and a cost-state filter neither
lists nor totals by reading the whole ledger."""

import datetime as dt
import html
import itertools
import re
import zoneinfo

import apsw
import pytest

from conftest import ADA, API_KEY, BOB, JWT_SECRET, assert_invariants, make_settings, outlet_body
from owui_meter import clock, create_app
from owui_meter.auth import create_token
from owui_meter.web.templating import COST_STATES, cost_state_key, human_count, usd
from test_dashboard import log_in

H = {"Authorization": f"Bearer {API_KEY}"}
ZONE = "Asia/Kathmandu"  # +05:45: local days start on a quarter hour, not an hour
START = 1_800_000_000.0
TOTALS = re.compile(r'<tr id="totals"><td colspan="2">All ([^<]+) matching answers</td><td class="num">([^<]+)</td>'
                    r'<td colspan="2" class="hide-small"></td><td class="num hide-small">([^<]+)</td><td class="num hide-small">([^<]+)</td>')


@pytest.fixture
def ledger(data_dir, monkeypatch):
    """90 answers over three local days in Kathmandu: two people, three models, both sources, and
    every cost state (reported, awaiting with and without a figure, estimated, unpriced, confirmed)."""
    moment = [START]
    monkeypatch.setattr(clock, "time_fn", lambda: moment[0])
    app = create_app(make_settings(data_dir, METER_TIMEZONE=ZONE))
    meter, client = app.config["METER"], app.test_client()
    admin = {"Authorization": f"Bearer {create_token(JWT_SECRET, days=1, name='tester')}"}  # made at the test's time
    price = {"prompt_usd_per_mtok": 1, "completion_usd_per_mtok": 2}
    assert client.put("/api/v1/prices/local/llama", json=price, headers=admin).status_code == 200
    for i in range(90):
        moment[0] = START + i * 47 * 60
        kind = i % 5
        model = {3: "local/llama", 4: "local/unknown"}.get(kind, ["m1", "m2"][(i // 2) % 2])
        cost = 0.01 * (i + 1) if kind in (0, 1) else None
        extra = {"generation_ids": [f"gen-{i}"]} if kind in (1, 2) else {}
        body = outlet_body(key=f"e{i}", user=(ADA, BOB)[i % 2], model=model, cost=cost, prompt=100 + i, completion=7 * i,
                           source="api" if i % 3 == 0 else None, **extra)
        assert client.post("/api/v1/outlet", json=body, headers=H).status_code == 202
    with meter.db.write() as conn:  # OpenRouter confirms some of the looked-up ones (as the resolver records it)
        for row in conn.execute("SELECT id FROM events WHERE key IN ('e1', 'e11', 'e21', 'e31', 'e41')").fetchall():
            confirm(meter, conn, row["id"], 123_456_789)
    log_in(client, meter)
    yield meter, client
    assert_invariants(meter)
    meter.stop()


def confirm(meter, conn, event_id: int, cost_nano: int) -> None:
    conn.execute("UPDATE generations SET state = 'done', total_cost_nano = ? WHERE event_id = ?", (cost_nano, event_id))
    meter.ledger.set_cost(conn, event_id, cost_nano, "generation", "confirmed")


def shown_totals(client, query: dict) -> tuple[str, str, str, str]:
    page = client.get("/events", query_string=query)
    assert page.status_code == 200, page.get_data(as_text=True)
    found = TOTALS.search(page.get_data(as_text=True))
    assert found, query
    return tuple(html.unescape(g) for g in found.groups())


def expected_totals(meter, query: dict) -> tuple[str, str, str, str]:
    """The ledger's figures for the filter, row by row from the events (each in the state its row shows)."""
    zone = zoneinfo.ZoneInfo(ZONE)
    rows = meter.db.query("SELECT * FROM events")
    if "from" in query:
        first = dt.datetime.combine(dt.date.fromisoformat(query["from"]), dt.time(), zone).timestamp() * 1000
        end = dt.datetime.combine(dt.date.fromisoformat(query["to"]) + dt.timedelta(days=1), dt.time(), zone).timestamp() * 1000
        rows = [r for r in rows if first <= r["ts"] < end]
    rows = [r for r in rows if all((
        query.get("state") in (None, cost_state_key(r)), query.get("model") in (None, r["model"]),
        query.get("source") in (None, r["source"]), query.get("user") in (None, r["user_id"])))]
    return (human_count(len(rows)), usd(sum(r["cost_nano"] for r in rows), 2),
            human_count(sum(r["prompt_tokens"] for r in rows)), human_count(sum(r["completion_tokens"] for r in rows)))


def test_every_filters_totals_row_is_the_ledgers(ledger):
    meter, client = ledger
    days = sorted({dt.datetime.fromtimestamp(r["ts"] / 1000, zoneinfo.ZoneInfo(ZONE)).date() for r in meter.db.query("SELECT ts FROM events")})
    assert len(days) == 4  # the answers cross three local midnights
    choices = {"state": [None, *COST_STATES], "model": [None, "m1"], "source": [None, "api"], "user": [None, BOB["id"]],
               "period": [None, (days[1].isoformat(), days[2].isoformat())]}
    seen_states = set()
    for values in itertools.product(*choices.values()):
        chosen = dict(zip(choices, values))
        query = {k: v for k, v in chosen.items() if v is not None and k != "period"}
        if chosen["period"]:
            query["from"], query["to"] = chosen["period"]
        expected = expected_totals(meter, query)
        assert shown_totals(client, query) == expected, query
        if expected[0] != "0" and not query.keys() - {"state"}:
            seen_states.add(query.get("state"))
    assert seen_states == {None, *COST_STATES}  # every state has answers of its own in this ledger


def test_totals_follow_a_cost_change_and_an_erasure(ledger):
    from owui_meter.erasure import erase_user

    meter, client = ledger
    query = {"state": "awaiting"}
    before = shown_totals(client, query)
    with meter.db.write() as conn:
        row = conn.execute("SELECT id FROM events WHERE key = 'e2'").fetchall()[0]
        confirm(meter, conn, row["id"], 5_000_000_000)
    after = shown_totals(client, query)
    assert after == expected_totals(meter, query) and after[0] == str(int(before[0]) - 1)
    assert shown_totals(client, {"state": "confirmed"}) == expected_totals(meter, {"state": "confirmed"})
    erase_user(meter, BOB["id"], "delete", "test")
    for state in COST_STATES:
        assert shown_totals(client, {"state": state}) == expected_totals(meter, {"state": state}), state


def statement_steps(meter, client, path) -> dict[str, int]:
    """The SQLite virtual-machine steps of each statement the page ran (a count, not a time)."""
    steps = {}

    def traced(event):
        steps[event["sql"]] = steps.get(event["sql"], 0) + event["stmt_status"]["SQLITE_STMTSTATUS_VM_STEP"]

    conn = meter.db.reader()  # the test client serves in this thread: the page reads on this connection
    conn.trace_v2(apsw.SQLITE_TRACE_PROFILE, traced)
    try:
        assert client.get(path).status_code == 200
    finally:
        conn.trace_v2(0, None)
    return steps



def test_cost_state_and_model_source_filters_do_not_read_the_whole_ledger(data_dir, monkeypatch):
    monkeypatch.setattr(clock, "time_fn", lambda: START)
    app = create_app(make_settings(data_dir))
    meter, client = app.config["METER"], app.test_client()
    for i in range(600):  # one quarter hour of reported answers, and one unpriced
        body = outlet_body(key=f"r{i}", model="m1", cost=0.01, source="api" if i % 2 else None)
        assert client.post("/api/v1/outlet", json=body, headers=H).status_code == 202
    client.post("/api/v1/outlet", json=outlet_body(key="odd", model="local/unknown", cost=None), headers=H)
    log_in(client, meter)
    for path in ("/events?state=unpriced", "/events?state=reported", "/events?model=m1&source=api", "/events?state=reported&from=2027-01-14&to=2027-01-16",
                 "/events?state=awaiting"):
        path += "&limit=5"  # five rows shown: what a page reads is then a few hundred steps at most
        steps = statement_steps(meter, client, path)
        assert steps and max(steps.values()) < 600, (path, steps)  # reading 600 events takes thousands
    assert "All 1 matching answers" in client.get("/events?state=unpriced").get_data(as_text=True)
    assert "All 600 matching answers" in client.get("/events?state=reported").get_data(as_text=True)
    assert_invariants(meter)
    meter.stop()


def test_a_large_slice_in_one_cost_state_is_added_up_when_asked(ledger, monkeypatch):
    from owui_meter.web.dashboard import events

    meter, client = ledger
    monkeypatch.setattr(events, "EVENTS_SUMMED_AT_ONCE", 20)  # Bob has 45 answers: more than that
    query = {"state": "awaiting", "user": BOB["id"]}
    page = client.get("/events", query_string=query).get_data(as_text=True)
    bobs = meter.db.query_one("SELECT count(*) AS n FROM events WHERE user_id = ?", (BOB["id"],))["n"]
    assert bobs == 45 and TOTALS.search(page) is None
    assert f'<tr id="totals"><td colspan="8">{bobs} answers match apart from the cost state:' in page
    link = html.unescape(re.search(r'<a id="add-up" href="([^"]+)">', page).group(1))
    assert "totals=all" in link
    asked = TOTALS.search(client.get(link).get_data(as_text=True))
    assert tuple(html.unescape(g) for g in asked.groups()) == expected_totals(meter, query)
    # a slice within the bound is added up at once; without a person, model or source the rollup answers
    assert shown_totals(client, {"state": "awaiting", "user": BOB["id"], "from": "2027-01-16", "to": "2027-01-16"}) == \
        expected_totals(meter, {"state": "awaiting", "user": BOB["id"], "from": "2027-01-16", "to": "2027-01-16"})
    assert shown_totals(client, {"state": "awaiting"}) == expected_totals(meter, {"state": "awaiting"})


@pytest.mark.parametrize("value", ["yes", "1", "ALL"])
def test_totals_takes_only_all(ledger, value):
    meter, client = ledger
    response = client.get("/events", query_string={"state": "confirmed", "totals": value})
    assert response.status_code == 400 and "totals must be all" in response.get_data(as_text=True)
