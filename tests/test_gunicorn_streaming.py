"""A streamed answer longer than gunicorn's worker timeout (an export of a few hundred thousand
rows) reaches the client whole under the deployment's gunicorn settings
(healthkit.gunicorn_conf): with sync workers the worker was killed at the timeout and the
download ended short. Real gunicorn, a 2 s timeout, an answer streamed over 4 s."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

APP = '''
import time

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    def rows():
        for n in range(8):
            time.sleep(0.5)
            yield f"row {n}\\n".encode()
    return rows()
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn(tmp_path):
    (tmp_path / "slow_stream.py").write_text(APP)
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 - a fixed command
        [sys.executable, "-m", "gunicorn", "-c", "python:healthkit.gunicorn_conf", "--timeout", "2",
         "--workers", "1", "--bind", f"127.0.0.1:{port}", "--chdir", str(tmp_path), "slow_stream:app"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(10)


def test_an_answer_streamed_past_the_worker_timeout_arrives_whole(gunicorn):
    started = time.monotonic()
    with urllib.request.urlopen(gunicorn, timeout=20) as response:  # noqa: S310 - our own local server
        body = response.read().decode()
    assert time.monotonic() - started > 3  # longer than the 2 s timeout
    assert body.splitlines() == [f"row {n}" for n in range(8)]
