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
    path = link_from_notice(client, ADA, "t1")
    token = path.rsplit("/", 1)[1]
    head, body, sig = token.split(".")
    tampered = f"{head}.{body}.{sig[:-2]}{'AA' if not sig.endswith('AA') else 'BB'}"
    expired = create_token(JWT_SECRET, days=-1, name=ADA["id"], scope="self")
    admin_token = create_token(JWT_SECRET, name=ADA["id"])  # an admin token is not a self link
    for bad in (tampered, expired, admin_token, "not-a-token"):
        response = client.get(f"/me/{bad}")
        assert response.status_code == 403
        assert "does not work" in response.get_data(as_text=True)
    real_now = clock.time_fn()
    monkeypatch.setattr(clock, "time_fn", lambda: real_now + 8 * 86400)  # links last 7 days
    assert client.get(path).status_code == 403


def test_no_link_without_public_url(data_dir):
    app = create_app(make_settings(data_dir))
    notice = app.test_client().post("/api/v1/outlet", json=outlet_body(key="n"), headers=H).get_json()["notice"]
    assert "/me/" not in notice
    app.config["METER"].stop()
