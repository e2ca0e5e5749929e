"""Random sequences of real operations, then `owui-meter check`'s invariants after every step.

Hypothesis drives the meter the way its users do, through the HTTP API (Flask test client) and
the functions the CLI and workers run: answers (new, duplicated, retried, stamped late or early),
cost confirmations by OpenRouter that differ from the inline cost (a real fake OpenRouter on
loopback and the resolver's one-round method), lookups that fail or never succeed, top-ups,
budget changes, group changes synced from a fake Open WebUI, erasure both ways, retention, and
several first requests of a new user at once. After every step each derived figure must still
follow from the events (:mod:`owui_meter.invariants`), and every request must get the answer
its kind deserves, never a 500.

Bounded for CI (OWUI_METER_FUZZ_EXAMPLES examples, default 30, of up to 40 steps);
``OWUI_METER_FUZZ_EXAMPLES=500`` runs a long search.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import threading
import uuid

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conftest import API_KEY, JWT_SECRET, make_settings
from fake_openrouter import FakeOpenRouter
from fake_openwebui import FakeOpenWebUI, make_group, make_user
from owui_meter import clock, create_app
from owui_meter.auth import create_token, hash_password
from owui_meter.invariants import check_file
from owui_meter.retention import prune

EXAMPLES = int(os.environ.get("OWUI_METER_FUZZ_EXAMPLES", "30"))
STEPS = 40
START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc).timestamp()
H = {"Authorization": f"Bearer {API_KEY}"}
USERS = [f"user-{i}" for i in range(4)]
GROUPS = ["eng", "ops"]
COSTS = [None, "0", "0.000001", "0.004", "0.25", "1.005", "3.3333"]
SHIFTS = [0, -1, -3600, -2 * 86400, -8 * 86400, 120, 3600]  # seconds from now; beyond 7 days or 5 minutes: adjusted
STATS = {"examples": 0, "steps": 0, "answers": 0, "confirmed": 0, "gave_up": 0, "erased": 0, "pruned": 0, "blocked": 0}

_fakes: dict = {}
_password_hash: list[str] = []


def fakes():
    """One fake OpenRouter and one fake Open WebUI for the whole run (generation ids never repeat)."""
    if not _fakes:
        _fakes["openrouter"] = FakeOpenRouter().start()
        _fakes["openwebui"] = FakeOpenWebUI().start()
        _password_hash.append(hash_password("random-operations-password"))
    return _fakes["openrouter"], _fakes["openwebui"]


@pytest.fixture(scope="module", autouse=True)
def stop_fakes():
    yield
    for fake in _fakes.values():
        fake.stop()
    _fakes.clear()
    print(f"\nrandom operations: {STATS}")


class MeterOperations(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.openrouter, self.openwebui = fakes()
        self.now = START
        self.saved_time_fn = clock.time_fn
        clock.time_fn = lambda: self.now
        self.folder = tempfile.mkdtemp(prefix="owui-meter-fuzz-")
        self.app = create_app(make_settings(
            self.folder, OPENROUTER_API_KEY=self.openrouter.api_key, OPENROUTER_BASE_URL=self.openrouter.url,
            OPENROUTER_TIMEOUT_SECONDS=2, METER_LOOKUP_RATE=1000, METER_LOOKUP_FIRST_RETRY_MS=1000,
            METER_LOOKUP_MAX_RETRY_SECONDS=60, METER_LOOKUP_GIVE_UP_HOURS=2, METER_BALANCES_ENABLED="true",
            METER_INITIAL_BALANCE="2", METER_RETENTION_DAYS=30, METER_BACKUP_KEEP=0,
            OPENWEBUI_URL=self.openwebui.url, OPENWEBUI_API_KEY=self.openwebui.api_key, PASSWORD_HASH=_password_hash[0],
        ))
        self.meter = self.app.config["METER"]
        self.client = self.app.test_client()
        self.sent: dict[str, dict] = {}  # key -> the body first sent
        self.budget_ids: list[int] = []
        self.tag = uuid.uuid4().hex[:8]
        self.counter = 0
        STATS["examples"] += 1

    def teardown(self):
        try:
            for source, name in (("generation", "confirmed"), ("gave_up", "gave_up")):
                column = "cost_source" if source == "generation" else "lookup_state"
                STATS[name] += self.meter.db.query_one(f"SELECT count(*) AS n FROM events WHERE {column} = ?", (source,))["n"]
            self.meter.stop()
        finally:
            clock.time_fn = self.saved_time_fn
            shutil.rmtree(self.folder, ignore_errors=True)

    # --- helpers ----------------------------------------------------------------------------------

    def admin(self) -> dict:
        return {"Authorization": f"Bearer {create_token(JWT_SECRET, days=1, name='fuzz')}"}

    def user(self, index: int) -> dict:
        user_id = USERS[index]
        return {"id": user_id, "email": f"{user_id}@example.com", "name": f"User {index}", "role": "user"}

    def known(self, user_id: str) -> bool:
        return self.meter.db.query_one("SELECT 1 AS x FROM users WHERE id = ?", (user_id,)) is not None

    def count(self) -> int:
        return self.meter.db.query_one("SELECT count(*) AS n FROM events")["n"]

    def step(self) -> None:
        STATS["steps"] += 1

    # --- answers ----------------------------------------------------------------------------------

    @rule(who=st.integers(0, len(USERS) - 1), cost=st.sampled_from(COSTS), shift=st.sampled_from(SHIFTS),
          generations=st.integers(0, 2), confirmed=st.sampled_from(["same", "higher", "lower", "never", "late"]))
    def answer(self, who, cost, shift, generations, confirmed):
        """A new answer, possibly with generation ids OpenRouter will (or never) confirm."""
        self.new_answer(who, cost, shift, generations, confirmed)

    @rule(who=st.integers(0, len(USERS) - 1), cost=st.sampled_from(COSTS), generations=st.integers(1, 2),
          confirmed=st.sampled_from(["same", "higher", "lower", "late"]))
    def answer_then_confirm(self, who, cost, generations, confirmed):
        """The common case (answers are most of what happens): an answer, then a resolver round."""
        self.new_answer(who, cost, 0, generations, confirmed)
        self.meter.resolver.run_once()

    def new_answer(self, who, cost, shift, generations, confirmed):
        self.step()
        self.counter += 1
        key = f"{self.tag}-{self.counter}"
        ids = [f"gen-{self.tag}-{self.counter}-{i}" for i in range(generations)]
        for i, gen_id in enumerate(ids):
            if confirmed == "never":
                continue  # 404 until the resolver gives up
            share = float(cost or "0.01") / len(ids)
            factor = {"same": 1, "higher": 1.37, "lower": 0.5, "late": 1.01}[confirmed]
            self.openrouter.add_generation(gen_id, round(share * factor, 9), not_found_times=3 if confirmed == "late" else 0)
        body = {"key": key, "user": self.user(who), "model": ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"][self.counter % 2],
                "chat_id": "chat-1", "message_id": key, "timestamp": self.now + shift, "generation_ids": ids,
                "usage": {"prompt_tokens": 10 + self.counter, "completion_tokens": 20, **({"cost": cost} if cost is not None else {})}}
        before = self.count()
        response = self.client.post("/api/v1/outlet", json=body, headers=H)
        assert response.status_code == 202, response.get_json()
        reply = response.get_json()
        assert reply["duplicate"] is False and self.count() == before + 1
        assert reply["timestamp_adjusted"] is (not -7 * 86400 <= shift <= 300)
        self.sent[key] = body
        STATS["answers"] += 1

    @precondition(lambda self: self.sent)
    @rule(data=st.data(), changed=st.booleans())
    def retry(self, data, changed):
        """The plugin sends an answer again (a retry, or Open WebUI's second outlet): one event."""
        self.step()
        key = data.draw(st.sampled_from(sorted(self.sent)))
        body = dict(self.sent[key])
        if changed:  # /api/chat/completed: no usage the second time
            body["usage"] = None
        stored = self.meter.db.query_one("SELECT cost_nano, user_id FROM events WHERE key = ?", (key,))
        before = self.count()
        response = self.client.post("/api/v1/outlet", json=body, headers=H)
        if stored is not None and stored["user_id"] != body["user"]["id"]:
            # anonymised since: the key now names the pseudonym's answer, another user's; refused
            assert response.status_code == 409 and self.count() == before
        else:
            assert response.status_code == 202
        if stored is not None:  # still there (not deleted or pruned): the same event, unchanged
            assert response.status_code == 409 or response.get_json()["duplicate"] is True
            assert self.count() == before
            assert self.meter.db.query_one("SELECT cost_nano FROM events WHERE key = ?", (key,))["cost_nano"] == stored["cost_nano"]

    @rule(who=st.integers(0, len(USERS) - 1))
    def inlet(self, who):
        self.step()
        response = self.client.post("/api/v1/inlet", json={"user": self.user(who), "model": "m"}, headers=H)
        assert response.status_code == 200
        decision = response.get_json()
        if not decision["allow"]:
            STATS["blocked"] += 1
            assert decision["message"] and "never" not in decision["message"] and "{" not in decision["message"]

    @rule(n=st.integers(2, 6))
    def concurrent_first_requests(self, n):
        """Several first requests of a new user at once: the initial balance is granted once."""
        self.step()
        self.counter += 1
        user = {"id": f"new-{self.tag}-{self.counter}", "name": "Newcomer"}
        together = threading.Barrier(n)
        answers = []

        def first():
            client = self.app.test_client()
            together.wait()
            answers.append(client.post("/api/v1/inlet", json={"user": user, "model": "m"}, headers=H))

        threads = [threading.Thread(target=first) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sorted(a.status_code for a in answers) == [200] * n
        grants = self.meter.db.query("SELECT amount_nano FROM balance_entries WHERE user_id = ?", (user["id"],))
        # a user a budget blocks at once gets no balance yet (the budget decides first)
        allowed = any(a.get_json()["allow"] for a in answers)
        assert grants == ([{"amount_nano": 2_000_000_000}] if allowed else [])

    # --- costs ------------------------------------------------------------------------------------

    @rule(failures=st.integers(0, 3), status=st.sampled_from([500, 502, 404]))
    def resolve(self, failures, status):
        """One round of the resolver, some lookups failing first."""
        self.step()
        if failures:
            self.openrouter.fail_next(failures, status)
        self.meter.resolver.run_once()
        with self.openrouter.lock:
            self.openrouter._failures.clear()  # what this round did not use must not hit a later one

    @rule(seconds=st.sampled_from([1, 30, 600, 3 * 3600, 86400, 9 * 86400, 40 * 86400]))
    def time_passes(self, seconds):
        self.step()
        self.now += seconds

    # --- admin ------------------------------------------------------------------------------------

    @rule(who=st.integers(0, len(USERS) - 1), amount=st.sampled_from(["5", "0.01", "-1.5", "100"]))
    def top_up(self, who, amount):
        self.step()
        user_id = USERS[who]
        response = self.client.post(f"/api/v1/users/{user_id}/topups", json={"amount_usd": amount, "note": "fuzz"}, headers=self.admin())
        assert response.status_code == (201 if self.known(user_id) else 404), response.get_json()

    @rule(scope=st.sampled_from(["user", "group", "all"]), who=st.integers(0, len(USERS) - 1), group=st.sampled_from(GROUPS),
          period=st.sampled_from(["day", "week", "month", "none"]), limit=st.sampled_from([0, 0.5, 1, 3, 50]),
          mode=st.sampled_from(["per_member", "shared"]), action=st.sampled_from(["block", "warn"]))
    def budget(self, scope, who, group, period, limit, mode, action):
        self.step()
        body = {"scope": scope, "scope_id": {"user": USERS[who], "group": group, "all": None}[scope], "period": period,
                "limit_usd": limit, "group_mode": mode, "action": action}
        response = self.client.post("/api/v1/budgets", json=body, headers=self.admin())
        assert response.status_code == 201, response.get_json()
        self.budget_ids.append(response.get_json()["id"])

    @precondition(lambda self: self.budget_ids)
    @rule(data=st.data(), period=st.sampled_from(["day", "month", "none"]), limit=st.sampled_from([0.25, 2, 10]), delete=st.booleans())
    def change_budget(self, data, period, limit, delete):
        self.step()
        budget_id = data.draw(st.sampled_from(self.budget_ids))
        row = self.meter.db.query_one("SELECT * FROM budgets WHERE id = ?", (budget_id,))
        if delete or row is None:  # gone with its user when erased (mode delete): 404
            response = self.client.delete(f"/api/v1/budgets/{budget_id}", headers=self.admin())
            assert response.status_code == (204 if row is not None else 404)
            self.budget_ids.remove(budget_id)
            return
        body = {"scope": row["scope"], "scope_id": row["scope_id"], "period": period, "limit_usd": limit, "group_mode": row["group_mode"]}
        response = self.client.put(f"/api/v1/budgets/{budget_id}", json=body, headers=self.admin())
        assert response.status_code == 200, response.get_json()

    @rule(memberships=st.lists(st.tuples(st.integers(0, len(USERS) - 1), st.sampled_from(GROUPS)), max_size=6))
    def groups_change_in_open_webui(self, memberships):
        self.step()
        users = [make_user(u, f"{u}@example.com", f"User {i}", group_ids=sorted({g for who, g in memberships if who == i}))
                 for i, u in enumerate(USERS)]
        self.openwebui.set_users(users)
        self.openwebui.set_groups([make_group(g, g.title()) for g in GROUPS])
        response = self.client.post("/api/v1/sync/openwebui", headers=self.admin())
        assert response.status_code == 200, response.get_json()

    @rule(who=st.integers(0, len(USERS) - 1), mode=st.sampled_from(["anonymise", "delete"]))
    def erase(self, who, mode):
        self.step()
        user_id = USERS[who]
        known = self.known(user_id)
        response = self.client.delete(f"/api/v1/users/{user_id}?mode={mode}", headers=self.admin())
        assert response.status_code == (200 if known else 404), response.get_json()
        if known:
            STATS["erased"] += 1
            assert not self.known(user_id)
            assert self.meter.db.query_one("SELECT count(*) AS n FROM events WHERE user_id = ?", (user_id,))["n"] == 0

    @rule()
    def retention(self):
        """What the daily retention job (and its CLI twin) does."""
        self.step()
        STATS["pruned"] += prune(self.meter)

    # --- after every step ---------------------------------------------------------------------------

    @invariant()
    def every_figure_follows_from_the_events(self):
        problems = check_file(self.meter.db.path, self.meter.settings)
        assert problems == [], "\n".join(problems)


MeterOperations.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=not os.environ.get("OWUI_METER_FUZZ_EXAMPLES"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], database=None,
)
test_random_operations_keep_every_figure = MeterOperations.TestCase
