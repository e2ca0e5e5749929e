"""Each user's own page: a signed, expiring link that shows only that user."""

import re

import pytest

from conftest import ADA, API_KEY, BOB, JWT_SECRET, make_settings, outlet_body
from owui_meter import clock, create_app
from owui_meter.auth import create_token

H = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def app(data_dir):
    app = create_app(make_settings(data_dir, METER_PUBLIC_URL="https://meter.example.com"))
    yield app
    app.config["METER"].stop()


def link_from_notice(client, user, key, cost=0.25, model="openai/gpt-4o-mini"):
    notice = client.post("/api/v1/outlet", json=outlet_body(key=key, user=user, cost=cost, model=model), headers=H).get_json()["notice"]
    return re.search(r"https://meter\.example\.com(/me/\S+)", notice).group(1)


def test_the_link_shows_only_its_user(client):
    ada_path = link_from_notice(client, ADA, "a1", model="model-ada-uses")
    link_from_notice(client, BOB | {"name": "Bob <script>alert(1)</script>"}, "b1", cost=7.5, model="model-bob-uses")
    page = client.get(ada_path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Ada Admin" in html and "model-ada-uses" in html and "$0.25" in html
    assert "Bob" not in html and "model-bob-uses" not in html and "$7.50" not in html


def test_names_are_escaped(client):
    path = link_from_notice(client, ADA | {"name": "<script>alert(1)</script>"}, "x")
    html = client.get(path).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_tampered_expired_and_admin_tokens_are_refused(client, monkeypatch):
    """The JWT links older versions put under answers keep working, and only while valid."""
    token = create_token(JWT_SECRET, days=7, name=ADA["id"], scope="self")
    link_from_notice(client, ADA, "t1")
    assert client.get(f"/me/{token}").status_code == 200
    head, body, sig = token.split(".")
    tampered = f"{head}.{body}.{sig[:-2]}{'AA' if not sig.endswith('AA') else 'BB'}"
    expired = create_token(JWT_SECRET, days=-1, name=ADA["id"], scope="self")
    admin_token = create_token(JWT_SECRET, name=ADA["id"])  # an admin token is not a self link
    for bad in (tampered, expired, admin_token, "not-a-token", "a.b.c"):
        response = client.get(f"/me/{bad}")
        assert response.status_code == 403
        assert "does not work" in response.get_data(as_text=True)
    real_now = clock.time_fn()
    monkeypatch.setattr(clock, "time_fn", lambda: real_now + 8 * 86400)  # links last 7 days
    assert client.get(f"/me/{token}").status_code == 403


def test_short_links_expire_are_reused_and_revocable(client, meter, monkeypatch):
    path = link_from_notice(client, ADA, "s1")
    assert re.fullmatch(r"/me/[A-Za-z0-9_-]{16}", path)
    assert link_from_notice(client, ADA, "s2") == path  # reused: the answer wrote nothing new
    assert link_from_notice(client, BOB, "s3") != path
    assert client.get(path).status_code == 200
    assert client.get(path[:-1] + ("A" if path[-1] != "A" else "B")).status_code == 403  # a guessed id
    real_now = clock.time_fn()
    monkeypatch.setattr(clock, "time_fn", lambda: real_now + 2 * 86400)
    fresh = link_from_notice(client, ADA, "s4")
    assert fresh != path  # a day later a new link is handed out; the old one still works
    assert client.get(path).status_code == 200
    monkeypatch.setattr(clock, "time_fn", lambda: real_now + 8 * 86400)
    assert client.get(path).status_code == 403  # expired after 7 days
    assert client.get(fresh).status_code == 200
    # an admin revokes them: the page is gone, and the next answer brings a new link
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"username": "admin", "password": meter.generated_password, "csrf_token": csrf})
    user_page = client.get(f"/users/{ADA['id']}").get_data(as_text=True)
    assert "page. 1 link valid now." in user_page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', user_page).group(1)  # the session's, after logging in
    page = client.post(f"/users/{ADA['id']}/links/revoke", data={"csrf_token": csrf}, follow_redirects=True).get_data(as_text=True)
    assert "1 link to this user" in page
    assert client.get(fresh).status_code == 403
    assert link_from_notice(client, ADA, "s5") not in (path, fresh)
    assert "revoked Ada Admin&#39;s usage links" in client.get("/status").get_data(as_text=True)
    assert client.post("/users/nobody/links/revoke", data={"csrf_token": csrf}).status_code == 404


def test_the_line_stays_short_and_speaks_the_language(client, meter):
    """With a budget, a balance and the link, the line under an answer is under 120 characters;
    numbers follow the valve's language."""
    client.post("/api/v1/budgets", json={"scope": "user", "scope_id": ADA["id"], "period": "month", "limit_usd": 1500},
                headers={"Authorization": f"Bearer {create_token(JWT_SECRET)}"})
    body = outlet_body(key="l1", user=ADA, cost=1.2345, prompt=1234, completion=56789)
    en = client.post("/api/v1/outlet", json=body, headers=H).get_json()["notice"]
    assert len(en) < 120, en
    assert en.startswith("$1.23 · 1,234 in / 56,789 out · $1,498.77 left this month · https://meter.example.com/me/")
    de = client.post("/api/v1/outlet", json=body | {"language": "de-DE"}, headers=H).get_json()["notice"]
    assert de.startswith("1,23\u00a0$ · 1.234 ein / 56.789 aus · 1.498,77\u00a0$ übrig diesen Monat · ")
    fr = client.post("/api/v1/outlet", json=body | {"language": "fr"}, headers=H).get_json()["notice"]
    assert fr.startswith("1,23\u00a0$ · 1\u202f234 entrée / 56\u202f789 sortie · 1\u202f498,77\u00a0$ restants ce mois-ci")


def test_no_link_without_public_url(data_dir):
    app = create_app(make_settings(data_dir))
    notice = app.test_client().post("/api/v1/outlet", json=outlet_body(key="n"), headers=H).get_json()["notice"]
    assert "/me/" not in notice
    app.config["METER"].stop()
