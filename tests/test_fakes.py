"""The fake OpenRouter and fake Open WebUI behave as their docstrings say (real HTTP on loopback)."""

import json
import pathlib
import threading
import time

import pytest
import requests

from fake_openwebui import ENGINEERING, FakeOpenWebUI, make_user

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "owui-0.12.4"
KEY = {"Authorization": "Bearer sk-or-test"}


@pytest.fixture
def owui():
    with FakeOpenWebUI(api_key="owui-key") as server:
        yield server


def generation(fake, gen_id, session=requests, **kwargs):
    return session.get(f"{fake.url}/generation", params={"id": gen_id}, headers=KEY, timeout=2, **kwargs)


# --- OpenRouter ---------------------------------------------------------------------------------


def test_generation_is_404_for_the_first_n_lookups_then_has_openrouters_fields(fake):
    fake.add_generation("gen-a", 0.0000111, not_found_times=2, native_tokens_prompt=14, provider_name="Azure")
    misses = [generation(fake, "gen-a") for _ in range(2)]
    assert [r.status_code for r in misses] == [404, 404]
    assert misses[0].json() == {"error": {"code": 404, "message": "Generation not found"}}
    data = generation(fake, "gen-a").json()["data"]
    example = json.loads((FIXTURES / "fake-openrouter.generation-example.json").read_text())["data"]
    assert list(data) == list(example)
    assert (data["id"], data["total_cost"], data["native_tokens_prompt"], data["provider_name"]) == ("gen-a", 0.0000111, 14, "Azure")
    assert '"total_cost": 1.11e-05' in generation(fake, "gen-a").text  # a JSON number, as OpenRouter sends it
    assert generation(fake, "gen-unknown").status_code == 404
    assert requests.get(f"{fake.url}/generation", headers=KEY, timeout=2).status_code == 400
    assert fake.count("/generation") == 6 and fake.count("/models") == 0


def test_generation_appears_after_a_delay(fake):
    fake.add_generation("gen-d", 0.5, available_after=0.3)
    assert generation(fake, "gen-d").status_code == 404
    time.sleep(0.35)
    assert generation(fake, "gen-d").json()["data"]["total_cost"] == 0.5


def test_a_key_is_needed_except_for_models(fake):
    fake.add_generation("gen-k", 0.1)
    for method, path in [("GET", "/generation?id=gen-k"), ("GET", "/key"), ("POST", "/chat/completions")]:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = requests.request(method, fake.url + path, headers=headers, json={}, timeout=2)
            assert response.status_code == 401 and response.json()["error"]["code"] == 401
    models = requests.get(f"{fake.url}/models", timeout=2).json()["data"]
    mini = next(m for m in models if m["id"] == "openai/gpt-4o-mini")
    assert mini["pricing"]["prompt"] == "0.00000015" and mini["pricing"]["completion"] == "0.0000006"
    assert all(isinstance(price, str) for m in models for price in m["pricing"].values())
    fake.set_models([{"id": "x/y", "pricing": {"prompt": "1", "completion": "2"}}])
    assert requests.get(f"{fake.url}/models", headers=KEY, timeout=2).json() == {"data": [{"id": "x/y", "pricing": {"prompt": "1", "completion": "2"}}]}


def test_fail_next_with_retry_after_then_recovers(fake):
    fake.add_generation("gen-f", 0.2)
    fake.fail_next(1, status=429, retry_after=30)
    fake.fail_next(1, status=502)
    first, second, third = (generation(fake, "gen-f") for _ in range(3))
    assert (first.status_code, first.headers["Retry-After"]) == (429, "30")
    assert second.status_code == 502 and "Retry-After" not in second.headers
    assert third.status_code == 200
    assert [s.status for s in fake.requests_seen] == [429, 502, 200]


@pytest.mark.parametrize("mode", ["500", "429"])
def test_failing_modes_answer_every_path(fake, mode):
    fake.add_generation("gen-m", 0.3)
    fake.set_mode(mode)
    assert generation(fake, "gen-m").status_code == int(mode)
    assert requests.get(f"{fake.url}/models", timeout=2).status_code == int(mode)
    fake.set_mode("ok")
    assert generation(fake, "gen-m").status_code == 200


def test_down_refuses_connections_and_ok_comes_back_on_the_same_port(fake):
    fake.add_generation("gen-down", 0.4)
    url, session = fake.url, requests.Session()
    assert generation(fake, "gen-down", session).status_code == 200  # a kept-alive connection
    fake.set_mode("down")
    for client in (session, requests):
        with pytest.raises(requests.ConnectionError):
            generation(fake, "gen-down", client)
    fake.set_mode("ok")
    assert fake.url == url
    assert generation(fake, "gen-down", session).status_code == 200


def test_timeout_mode_holds_the_answer(fake):
    fake.timeout_seconds = 0.5
    fake.set_mode("timeout")
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{fake.url}/models", timeout=(2, 0.2))
    fake.set_mode("ok")
    assert requests.get(f"{fake.url}/models", timeout=2).status_code == 200


def test_max_concurrent_counts_requests_in_flight(fake):
    fake.set_mode("timeout")  # each request waits timeout_seconds (5) or until the mode changes
    threads = [threading.Thread(target=requests.get, args=(f"{fake.url}/models",), kwargs={"timeout": 5}) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 3
    while fake.in_flight < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    released = time.monotonic()
    fake.set_mode("ok")  # answers the waiting ones at once
    for t in threads:
        t.join()
    assert fake.max_concurrent == 3 and fake.in_flight == 0
    assert [seen.status for seen in fake.requests_seen] == [200] * 3
    assert all(seen.time < released for seen in fake.requests_seen)  # arrival times, not answer times
    fake.clear_log()
    assert fake.requests_seen == [] and fake.max_concurrent == 0


def test_chat_completion_registers_its_generation(fake):
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
    answer = requests.post(f"{fake.url}/chat/completions", json=body, headers=KEY, timeout=2).json()
    assert answer["id"].startswith("gen-") and answer["model"] == "openai/gpt-4o-mini"
    usage = answer["usage"]
    assert usage["cost"] == pytest.approx(usage["prompt_tokens"] * 0.00000015 + usage["completion_tokens"] * 0.0000006)
    data = generation(fake, answer["id"]).json()["data"]
    assert (data["total_cost"], data["tokens_prompt"], data["streamed"]) == (usage["cost"], usage["prompt_tokens"], False)
    unknown = requests.post(f"{fake.url}/chat/completions", json={**body, "model": "no/such"}, headers=KEY, timeout=2)
    assert unknown.status_code == 400 and "no/such" in unknown.json()["error"]["message"]
    fake.set_model_error("deepseek/deepseek-r1", 404)
    down = requests.post(f"{fake.url}/chat/completions", json={**body, "model": "deepseek/deepseek-r1"}, headers=KEY, timeout=2)
    assert down.status_code == 404


def test_key_usage_and_key_errors(fake):
    fake.set_key_usage(total=12.5, daily=0.5, weekly=2.0, monthly=7.25)
    data = requests.get(f"{fake.url}/key", headers=KEY, timeout=2).json()["data"]
    assert (data["usage"], data["usage_daily"], data["usage_weekly"], data["usage_monthly"]) == (12.5, 0.5, 2.0, 7.25)
    assert data["limit"] is None and data["is_free_tier"] is False
    fake.set_key_status(402)
    assert requests.get(f"{fake.url}/key", headers=KEY, timeout=2).status_code == 402


# --- Open WebUI ---------------------------------------------------------------------------------


def owui_get(owui, path, key="owui-key", **params):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.get(owui.url + path, params=params, headers=headers, timeout=2)


def test_owui_default_users_and_groups_are_shaped_like_the_fixtures(owui):
    users = owui_get(owui, "/api/v1/users/").json()
    recorded = json.loads((FIXTURES / "admin.users.json").read_text())
    assert users == recorded
    groups = owui_get(owui, "/api/v1/groups/").json()
    assert groups == json.loads((FIXTURES / "admin.groups.json").read_text())
    assert "group_ids" not in owui_get(owui, "/api/v1/users/all").json()["users"][0]


def test_owui_pages_of_thirty(owui):
    owui.set_users([make_user(f"u{i}", f"u{i}@example.com", f"U{i}", group_ids=[ENGINEERING] if i % 2 else []) for i in range(75)])
    pages = [owui_get(owui, "/api/v1/users/", page=p).json() for p in (1, 2, 3, 4)]
    assert [len(p["users"]) for p in pages] == [30, 30, 15, 0] and {p["total"] for p in pages} == {75}
    assert pages[2]["users"][0]["id"] == "u60"
    assert owui_get(owui, "/api/v1/users/", page=0).json()["users"][0]["id"] == "u0"
    assert owui_get(owui, "/api/v1/users/", page="x").status_code == 422
    assert owui_get(owui, "/api/v1/groups/").json()[0]["member_count"] == 37
    assert owui_get(owui, "/api/v1/users").json()["total"] == 75  # redirected to the slash
    assert owui.count("/api/v1/users") == 8 and owui.count("/api/v1/users/") == 7


def test_owui_auth_and_modes(owui):
    assert owui_get(owui, "/api/v1/users/", key=None).status_code == 401
    assert owui_get(owui, "/api/v1/groups/", key="wrong").json()["detail"]
    owui.set_mode("500")
    assert owui_get(owui, "/api/v1/users/").status_code == 500
    url = owui.url
    owui.set_mode("down")
    with pytest.raises(requests.ConnectionError):
        owui_get(owui, "/api/v1/users/")
    owui.set_mode("ok")
    assert owui.url == url and owui_get(owui, "/api/v1/users/").status_code == 200


def test_raw_generation_replies_and_unknown_costs(fake):
    fake.add_raw_generation("gen-raw", {"data": {"id": "gen-raw", "total_cost": "lots"}})
    fake.add_raw_generation("gen-text", "<html>502</html>", status=200)
    fake.add_generation("gen-null", None)
    assert generation(fake, "gen-raw").json() == {"data": {"id": "gen-raw", "total_cost": "lots"}}
    text = generation(fake, "gen-text")
    assert (text.status_code, text.headers["Content-Type"], text.text) == (200, "text/plain; charset=utf-8", "<html>502</html>")
    assert generation(fake, "gen-null").json()["data"]["total_cost"] is None
    fake.add_generation("gen-null", 0.25)  # registered again: the cost is known now
    assert generation(fake, "gen-null").json()["data"]["total_cost"] == 0.25
