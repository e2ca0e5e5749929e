"""Every route × every kind of credential, generated from the app's own URL map.

Each route declares its policy (``owui_meter/web/access.py``); a route without one fails here.
A request is *let in* when it is not refused: refused is 401, 403, or a redirect to log in first.
"""

import re
import time

import jwt
import pytest

from conftest import ADA, API_KEY, JWT_SECRET, make_settings, outlet_body
from fake_openrouter import FakeOpenRouter
from owui_meter import create_app
from owui_meter.auth import create_token
from owui_meter.notices import SELF_SCOPE
from test_dashboard import csrf_of, log_in

METRICS_TOKEN = "metrics-token-0123456789"
OTLP_TOKEN = "otlp-token-0123456789-abcdef"
FORWARD_SECRET = "forward-secret-0123456789-0123456789"
PATH_VALUES = {"user_id": "nobody", "budget_id": "999999", "model_id": "some/model", "group_id": "nogroup", "rest": "models"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
SESSIONS = {"session", "session_csrf", "session_basic"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def tampered(token: str) -> str:
    head, body, signature = token.split(".")
    return f"{head}.{body}.{signature[:-2]}{'AA' if not signature.endswith('AA') else 'BB'}"


# what each policy lets in: (for reads, for writes)
LET_IN = {
    "plugin": ({"plugin"}, {"plugin"}),
    "admin": ({"admin_token"} | SESSIONS, {"admin_token", "session_csrf"}),
    "session": (SESSIONS, {"session_csrf"}),
    "metrics": ({"metrics_token"}, {"metrics_token"}),
    "otlp": ({"otlp_token"}, {"otlp_token"}),
    "public": (None, None),  # everyone
    # reads (the model list) go to OpenRouter with the caller's own Authorization; anything else
    # needs Open WebUI's signed user header
    "passthrough": (None, {"forward_jwt"}),
}
CREDENTIALS = ["none", "plugin", "admin_token", "expired_token", "tampered_token", "foreign_token", "self_token",
               "metrics_token", "otlp_token", "session", "session_csrf", "session_basic", "forward_jwt"]


@pytest.fixture
def app(data_dir):
    with FakeOpenRouter() as fake:  # pass-through routes reach a real upstream
        app = create_app(make_settings(data_dir, METRICS_TOKEN=METRICS_TOKEN, METER_OTLP_TOKEN=OTLP_TOKEN, METER_PASSTHROUGH="true",
                                       METER_FORWARD_JWT_SECRET=FORWARD_SECRET, OPENROUTER_BASE_URL=fake.url))
        app.config["TESTING"] = True
        app.test_client().post("/api/v1/outlet", json=outlet_body(user=ADA), headers=bearer(API_KEY))
        yield app
        app.config["METER"].stop()


def routes(app):
    """(rule, method, endpoint) of every route but Flask's static files; logout last."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule, method, rule.endpoint))
    return sorted(found, key=lambda r: r[2] == "login.logout")


def test_every_route_declares_its_policy(app):
    undeclared = [e for _, _, e in routes(app) if getattr(app.view_functions[e], "access_policy", None) is None]
    assert undeclared == []
    policies = {getattr(app.view_functions[e], "access_policy") for _, _, e in routes(app)}
    assert policies <= set(LET_IN) | {"self"}


def make_clients(app):
    meter = app.config["METER"]
    clients = {}
    for name in CREDENTIALS:
        client = app.test_client()
        headers = {}
        if name in SESSIONS:
            assert log_in(client, meter).status_code == 302
            if name == "session_csrf":
                headers["X-CSRF-Token"] = csrf_of(client, "/")
            if name == "session_basic":
                headers["Authorization"] = "Basic YWRtaW46YWRtaW4="
        elif name == "forward_jwt":
            claims = {"sub": ADA["id"], "email": ADA["email"], "name": ADA["name"], "role": ADA["role"], "iss": "open-webui",
                      "iat": int(time.time()), "exp": int(time.time()) + 300}
            headers["X-OpenWebUI-User-Jwt"] = jwt.encode(claims, FORWARD_SECRET, algorithm="HS256")
        else:
            token = {
                "plugin": API_KEY,
                "admin_token": create_token(JWT_SECRET, days=1),
                "expired_token": create_token(JWT_SECRET, days=-1),
                "tampered_token": tampered(create_token(JWT_SECRET, days=1)),
                "foreign_token": create_token("another-secret-0123456789-0123456789-xyz", days=1),
                "self_token": create_token(JWT_SECRET, days=1, name=ADA["id"], scope=SELF_SCOPE),
                "metrics_token": METRICS_TOKEN,
                "otlp_token": OTLP_TOKEN,
            }.get(name)
            if token:
                headers.update(bearer(token))
        clients[name] = (client, headers)
    return clients


def refused(response) -> bool:
    if response.status_code in (401, 403):
        return True
    return response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_each_route_lets_in_exactly_the_credentials_its_policy_names(app):
    clients = make_clients(app)
    wrong = []
    checked = 0
    for rule, method, endpoint in routes(app):
        policy = app.view_functions[endpoint].access_policy
        if policy == "self" or (endpoint == "login.login" and method == "POST"):
            continue  # the token is in the path / a login form: tested below and in test_dashboard
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: PATH_VALUES[m.group(1)], rule.rule)
        if method == "DELETE" and endpoint == "operations.erase":
            path += "?mode=delete"
        reads, writes = LET_IN[policy]
        expected = writes if method in WRITES else reads
        for name in CREDENTIALS:
            client, headers = clients[name]
            response = client.open(path, method=method, headers=headers, json={} if method in ("POST", "PUT") else None)
            response.get_data()  # a streamed body (the CSV) holds its request context until read
            response.close()
            checked += 1
            let_in = not refused(response)
            should = expected is None or name in expected
            if let_in != should:
                wrong.append(f"{method} {path} with {name}: {response.status_code}")
            assert response.status_code < 500, f"{method} {path} with {name}: {response.status_code}"
    assert wrong == []
    assert checked >= 40 * len(CREDENTIALS)


def test_own_page_opens_only_with_that_users_self_token(app):
    client = app.test_client()
    own = create_token(JWT_SECRET, days=1, name=ADA["id"], scope=SELF_SCOPE)
    assert client.get(f"/me/{own}").status_code == 200
    for token in (create_token(JWT_SECRET, days=1), tampered(own), create_token(JWT_SECRET, days=-1, name=ADA["id"], scope=SELF_SCOPE),
                  create_token("another-secret-0123456789-0123456789-xyz", days=1, name=ADA["id"], scope=SELF_SCOPE), API_KEY):
        assert client.get(f"/me/{token}").status_code == 403
