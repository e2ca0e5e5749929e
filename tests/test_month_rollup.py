"""Periods read per user from whole months (usage_month_user, usage_month_user_model) and day by
day at their ragged ends: the users list, a person's models and sources, the overview's top users
and active users, its previous period and the reports page show the ledger's figures for periods
with and without whole months inside."""

import datetime as dt
import html
import re
import zoneinfo

import pytest

from conftest import ADA, API_KEY, BOB, assert_invariants, make_settings, outlet_body
from owui_meter import clock, create_app
from owui_meter.web.templating import human_count, usd
from test_dashboard import log_in

H = {"Authorization": f"Bearer {API_KEY}"}
ZONE = "America/St_Johns"  # -03:30: a month ends at 03:30 UTC
EVE = {"id": "eve", "email": "eve@example.com", "name": "Eve"}
LOCAL = zoneinfo.ZoneInfo(ZONE)
# the answers run from 20 October to 10 December; the clock then stands on 15 December
FIRST = dt.datetime(2026, 10, 20, 12, tzinfo=LOCAL).timestamp()
LAST = dt.datetime(2026, 12, 10, 12, tzinfo=LOCAL).timestamp()
PERIODS = [("2026-10-25", "2026-12-05"),  # ragged at both ends, November whole inside
           ("2026-11-01", "2026-11-30"),  # one whole month
           ("2026-11-03", "2026-11-20"),  # no whole month
           ("2026-10-01", "2026-12-31"),  # whole months only
           ("2026-10-31", "2026-12-01")]  # a day either side of a whole month


@pytest.fixture
def team(data_dir, monkeypatch):
    moment = [FIRST]
    monkeypatch.setattr(clock, "time_fn", lambda: moment[0])
    app = create_app(make_settings(data_dir, METER_TIMEZONE=ZONE))
    meter, client = app.config["METER"], app.test_client()
    i = 0
    while moment[0] < LAST:  # every 5 h 50 min, so answers fall on both sides of each local midnight
        user = (ADA, BOB, EVE)[i % 3 if i % 7 else 0]
        body = outlet_body(key=f"m{i}", user=user, cost=0.01 * (1 + i % 13), model=("m1", "m2")[i % 2])
        assert client.post("/api/v1/outlet", json=body, headers=H).status_code == 202
        moment[0] += 5 * 3600 + 50 * 60
        i += 1
    moment[0] = dt.datetime(2026, 12, 15, 12, tzinfo=LOCAL).timestamp()
    log_in(client, meter)
    yield meter, client
    assert_invariants(meter)
    meter.stop()


def ledger_by_user(meter, first: str, last: str) -> dict[str, dict]:
    """Each user's answers and cost from the events whose local day falls in first..last."""
    start = dt.datetime.combine(dt.date.fromisoformat(first), dt.time(), LOCAL).timestamp() * 1000
    end = dt.datetime.combine(dt.date.fromisoformat(last) + dt.timedelta(days=1), dt.time(), LOCAL).timestamp() * 1000
    return {r["user_id"]: r for r in meter.db.query(
        "SELECT user_id, count(*) AS answers, sum(cost_nano) AS cost FROM events WHERE ts >= ? AND ts < ? GROUP BY user_id", (start, end))}


@pytest.mark.parametrize("first, last", PERIODS)
def test_users_overview_and_reports_show_the_ledger_for_any_period(team, first, last):
    meter, client = team
    expected = ledger_by_user(meter, first, last)
    assert len(expected) == 3
    names = {ADA["id"]: ADA["name"], BOB["id"]: BOB["name"], EVE["id"]: EVE["name"]}
    users = client.get(f"/users?period=custom&from={first}&to={last}").get_data(as_text=True)
    for user_id, row in expected.items():
        shown = re.search(rf'>{re.escape(names[user_id])}</a></td><td class="hide-small">[^<]*</td>\s*'
                          r'<td class="num">([^<]+)</td><td class="num">([^<]+)</td>', users)
        assert shown and shown.groups() == (human_count(row["answers"]), usd(row["cost"], 2)), user_id
    overview = client.get(f"/?period=custom&from={first}&to={last}").get_data(as_text=True)
    assert re.search(r'id="total-users">(\d+)<', overview).group(1) == "3"
    top = re.findall(r'<tr><td><a href="[^"]+">([^<]+)</a></td><td class="num">([^<]+)</td><td class="num">([^<]+)</td></tr>',
                     overview[overview.index('id="top-users"'):].split("</table>")[0])
    ranked = sorted(expected.items(), key=lambda kv: (-kv[1]["cost"], kv[0]))
    assert [(html.unescape(n), a, c) for n, a, c in top] == [(names[k], human_count(r["answers"]), usd(r["cost"], 2)) for k, r in ranked]
    # a person's page: their models and sources over the period
    start = dt.datetime.combine(dt.date.fromisoformat(first), dt.time(), LOCAL).timestamp() * 1000
    end = dt.datetime.combine(dt.date.fromisoformat(last) + dt.timedelta(days=1), dt.time(), LOCAL).timestamp() * 1000
    for user_id in expected:
        page = client.get(f"/users/{user_id}?period=custom&from={first}&to={last}").get_data(as_text=True)
        shown = re.findall(r'<tr><td>(m\d)</td><td class="num">([^<]+)</td><td class="num hide-small">[^<]+</td>'
                           r'<td class="num hide-small">[^<]+</td><td class="num">([^<]+)</td></tr>', page)
        per_model = meter.db.query("""SELECT model, count(*) AS n, sum(cost_nano) AS cost FROM events WHERE user_id = ? AND ts >= ? AND ts < ?
                                      GROUP BY model ORDER BY cost DESC, model""", (user_id, start, end))
        assert shown == [(r["model"], human_count(r["n"]), usd(r["cost"], 2)) for r in per_model], user_id
        web_ui = re.search(r'>Web UI</a></td><td class="num">([^<]+)</td><td class="num">([^<]+)</td>', page).groups()
        assert web_ui == (human_count(expected[user_id]["answers"]), usd(expected[user_id]["cost"], 2))
    reports = client.get(f"/reports?from={first}&to={last}").get_data(as_text=True)
    rows = re.findall(r'<tr><td>([^<]+)</td><td class="num">([^<]+)</td>', reports)
    assert [(html.unescape(n), a) for n, a in rows] == [(names[k], human_count(r["answers"])) for k, r in ranked]


def test_previous_period_of_a_whole_month_compares_with_the_ledger(team):
    meter, client = team
    now = ledger_by_user(meter, "2026-11-01", "2026-11-30")
    before = ledger_by_user(meter, "2026-10-01", "2026-10-31")
    page = client.get("/?period=custom&from=2026-11-01&to=2026-11-30").get_data(as_text=True)
    cost_now, cost_before = sum(r["cost"] for r in now.values()), sum(r["cost"] for r in before.values())
    percent = round(100 * (cost_now - cost_before) / cost_before)
    shown = re.sub(r"<[^>]+>", "", re.search(r'<span id="cost-change">(.*?)</span></span>', page).group(1))
    assert shown == f"{percent:+d}% vs 1 Oct – 31 Oct"
    users_before = re.sub(r"<[^>]+>", "", re.search(r'<span id="users-change">(.*?)</span></span>', page).group(1))
    assert len(before) == 3 and users_before == f"{round(100 * (len(now) - len(before)) / len(before)):+d}% vs 1 Oct – 31 Oct"
