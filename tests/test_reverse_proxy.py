"""The meter behind a real HTTPS-terminating reverse proxy process: with METER_TRUSTED_PROXY the
login form works, the cookie is Secure, and the login limit counts each real client."""

import http.client
import http.server
import re
import threading
import urllib.parse

import pytest
import requests

PUBLIC = "https://meter.example"


class ForwardingProxy:
    """A reverse proxy on loopback, as nginx would be configured in front of the meter: it forwards
    every request and sets X-Forwarded-For (the client address it is told to pretend, default
    203.0.113.7), X-Forwarded-Proto: https and X-Forwarded-Host."""

    def __init__(self, upstream_port: int):
        proxy = self
        self.client_address = "203.0.113.7"

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "x-forwarded-for")}
                headers.update({"Host": "meter.example", "X-Forwarded-For": proxy.client_address,
                                "X-Forwarded-Proto": "https", "X-Forwarded-Host": "meter.example"})
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Browser:
    """What a browser on https://meter.example does: keeps cookies (Secure ones too: the browser
    speaks HTTPS to the proxy, this test speaks plain HTTP to the same proxy) and sends them back."""

    def __init__(self):
        self.cookies = {}
        self.last_set_cookie = ""

    def request(self, method, url, **kwargs):
        headers = kwargs.pop("headers", {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = requests.request(method, url, headers=headers, timeout=10, **kwargs)
        for header in response.raw.headers.getlist("Set-Cookie"):
            self.last_set_cookie = header
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return response

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.request("POST", url, **kwargs)


@pytest.fixture
def behind_proxy(meter_process):
    meter = meter_process(METER_TRUSTED_PROXY="true", METER_HOST="127.0.0.1")
    proxy = ForwardingProxy(meter.port)
    yield meter, proxy
    proxy.close()


def admin_password(meter) -> str:
    return re.search(rb"password = (\S+)", meter.proc.stdout.read1(65536)).group(1).decode()


def login_form(session, proxy) -> str:
    page = session.get(proxy.url + "/login")
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def post_login(session, proxy, password, username="admin"):
    data = {"username": username, "password": password, "csrf_token": login_form(session, proxy)}
    return session.post(proxy.url + "/login", data=data, headers={"Origin": PUBLIC}, allow_redirects=False)


def test_login_through_an_https_proxy_works_and_the_cookie_is_secure(behind_proxy):
    meter, proxy = behind_proxy
    password = admin_password(meter)
    browser = Browser()
    response = post_login(browser, proxy, password)
    assert response.status_code == 302, response.text
    assert urllib.parse.urlsplit(response.headers["Location"]).path == "/"
    assert browser.last_set_cookie.startswith("owui_meter_session=")
    assert "Secure" in browser.last_set_cookie and "HttpOnly" in browser.last_set_cookie
    page = browser.get(proxy.url + "/budgets")
    assert page.status_code == 200 and "Budgets" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    made = browser.post(proxy.url + "/budgets", data={"scope": "all", "limit_usd": "5", "period": "month", "action": "block",
                                                        "group_mode": "per_member", "warn_percent": "80", "csrf_token": token},
                        headers={"Origin": PUBLIC}, allow_redirects=False)
    assert made.status_code == 302  # a form of this site, through the proxy, is accepted
    forged = browser.post(proxy.url + "/budgets", data={"scope": "all", "limit_usd": "6", "csrf_token": token},
                          headers={"Origin": "https://evil.example"}, allow_redirects=False)
    assert forged.status_code == 403


def test_the_login_limit_counts_each_client_behind_the_proxy(behind_proxy):
    meter, proxy = behind_proxy
    proxy.client_address = "198.51.100.1"
    for _ in range(5):
        assert post_login(Browser(), proxy, "wrong-password").status_code == 401
    assert post_login(Browser(), proxy, "wrong-password").status_code == 429
    proxy.client_address = "198.51.100.2"  # another person behind the same proxy is not limited
    assert post_login(Browser(), proxy, "wrong-password", username="bob").status_code == 401
