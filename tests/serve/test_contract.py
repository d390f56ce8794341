"""The OpenAPI description is the real contract: schemathesis, an outside fuzzer, agrees.

Runs ``schemathesis run --checks all`` (with the repository's ``schemathesis.toml``)
against ``placeprint serve`` on loopback, as a user would.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import CLI, REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_schemathesis_finds_no_failure(lund_tiny_index):
    st = shutil.which("schemathesis", path=os.path.dirname(sys.executable))
    if st is None:
        if os.environ.get("CI") == "true":
            pytest.fail("schemathesis is not installed (a dev dependency: make test installs it)")
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    port = _free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--index", str(lund_tiny_index.index), "--port", str(port), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.1)
        run = subprocess.run(
            [
                st,
                "run",
                url + "/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--no-color",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert "No issues found" in run.stdout
        urllib.request.urlopen(url + "/health", timeout=5).read()  # still serving
    finally:
        server.terminate()
        server.wait(10)
