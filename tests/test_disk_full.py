"""A full disk under the real server process: a 4 MB tmpfs holds the data directory.

Mounting needs root; without it these tests skip, saying why, except in CI (OWUI_METER_CI=1,
set by .ci/run) where they must run and fail instead.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from conftest import ADA, API_KEY, MeterProcess, outlet_body
from test_serve import all_keys

PLUGIN = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs, unmounted (after the meters on it are killed) at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()
    why = None
    if os.getuid() != 0:
        why = "the full-disk tests mount a tmpfs, which needs root"
    else:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4M", "tmpfs", str(mount)], capture_output=True, text=True)
        if result.returncode != 0:
            why = f"cannot mount a tmpfs: {result.stderr.strip()}"
    if why:
        if os.environ.get("OWUI_METER_CI") == "1":
            pytest.fail(f"{why} (required in CI)")
        pytest.skip(why)
    disk = SmallDisk(mount)
    yield disk
    for process in disk.processes:
        process.kill()
    subprocess.run(["umount", str(mount)], check=True)


class SmallDisk:
    def __init__(self, mount):
        self.mount = mount
        self.data = mount / "data"
        self.filler = mount / "filler"
        self.processes: list[MeterProcess] = []

    def meter(self, *, healthy=True) -> MeterProcess:
        """A meter on this disk; ``healthy=False`` waits only for /healthcheck to answer at all."""
        process = MeterProcess(self.data)
        self.processes.append(process)
        if healthy:
            return process.start()
        process.proc = subprocess.Popen([sys.executable, "-m", "owui_meter", "serve"], env=process.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert process.proc.poll() is None, process.proc.stdout.read().decode()
            try:
                requests.get(process.url + "/healthcheck", timeout=1)
                return process
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("the meter never answered")

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(fd)
        assert os.statvfs(self.mount).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink()


def post(url, key):
    return requests.post(url + "/api/v1/outlet", json=outlet_body(key=key, prompt=len(key)), headers=PLUGIN, timeout=10)


def full_disk_lines(output: bytes) -> list[str]:
    """Log lines about the full disk: the meter's own, and SQLite's or a traceback's wording."""
    return [line for line in output.decode().splitlines() if "disk full" in line.lower() or "disk is full" in line.lower()]


def test_full_disk_503_with_retry_after_then_recovers_without_restart(small_disk):
    meter = small_disk.meter()
    acknowledged = []
    for n in range(20):
        assert post(meter.url, f"before-{n}").status_code == 202
        acknowledged.append(f"before-{n}")

    small_disk.fill()
    health = requests.get(meter.url + "/healthcheck", timeout=5)
    assert health.status_code == 503
    assert "disk full" in health.json()["disk"] and str(small_disk.data) in health.json()["disk"]

    refused = []
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for n, response in enumerate(pool.map(lambda n: post(meter.url, f"full-{n}"), range(200))):
            if response.status_code == 202:
                acknowledged.append(f"full-{n}")  # room left in the WAL: stored, and so acknowledged
            else:
                assert response.status_code == 503, response.text
                assert response.json()["error"].startswith("the meter's disk is full")
                assert int(response.headers["Retry-After"]) > 0
                refused.append(f"full-{n}")
    assert len(refused) > 100  # the disk really was full for writes
    # budget decisions go on: a full disk must not let an over-budget user through by timing out
    inlet = requests.post(meter.url + "/api/v1/inlet", json={"user": {**ADA, "id": "new-user-on-full-disk"}}, headers=PLUGIN, timeout=5)
    assert inlet.status_code == 200 and inlet.json()["allow"] is True
    for _ in range(5):
        assert requests.get(meter.url + "/healthcheck", timeout=5).status_code == 503

    small_disk.free()
    assert requests.get(meter.url + "/healthcheck", timeout=5).status_code == 200  # no restart
    assert post(meter.url, "after").status_code == 202
    acknowledged.append("after")

    meter.proc.send_signal(signal.SIGTERM)
    assert meter.wait() == 0
    output = meter.output
    assert b"Traceback" not in output
    lines = full_disk_lines(output)
    assert len(lines) == 1, lines  # one line about it in this minute, not one per failed write
    assert "disk space is back" in output.decode()

    restarted = small_disk.meter()
    keys = all_keys(restarted.url)
    assert sorted(keys) == sorted(acknowledged)  # every 202 stored, once; no 503 stored


def test_the_meter_starts_read_only_on_a_full_disk(small_disk):
    meter = small_disk.meter()
    assert post(meter.url, "stored").status_code == 202
    small_disk.fill()
    n = 0
    while post(meter.url, f"fill-{n}").status_code == 202:  # until the WAL has no room either
        n += 1
        assert n < 500
    stored = ["stored"] + [f"fill-{i}" for i in range(n)]
    meter.proc.send_signal(signal.SIGKILL)  # a crash on the full disk: the WAL stays to be read
    meter.wait()

    restarted = small_disk.meter(healthy=False)
    health = requests.get(restarted.url + "/healthcheck", timeout=5)
    assert health.status_code == 503 and "disk full" in health.json()["disk"]
    assert sorted(all_keys(restarted.url)) == sorted(stored)  # reads work
    refused = post(restarted.url, "while-full")
    assert refused.status_code == 503 and refused.headers["Retry-After"]

    small_disk.free()
    assert requests.get(restarted.url + "/healthcheck", timeout=5).status_code == 200
    assert post(restarted.url, "after").status_code == 202
    restarted.proc.send_signal(signal.SIGTERM)
    assert restarted.wait() == 0
    output = restarted.output.decode()
    assert "Traceback" not in output
    [said] = [line for line in output.splitlines() if "read-only" in line]
    assert "disk full" in said
