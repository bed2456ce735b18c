"""``sigmaserve serve`` as an operator runs it: configurations it cannot serve end with one clear
line and exit status 2, never a traceback or a server without the auth that was asked for;
IPv6 literals bind; SIGTERM ends cleanly without the optional extras (issue 12, B2, B8, B11).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.runtime

# Runs the command line with prometheus_client unimportable, as in the server image (no extras).
WITHOUT_PROMETHEUS = (
    "import sys; sys.modules['prometheus_client'] = None; "
    "from sigmaserve.cli import main; raise SystemExit(main(sys.argv[1:]))"
)


def _serve_command(*args: str, without_prometheus: bool = False) -> list[str]:
    if without_prometheus:
        return [sys.executable, "-c", WITHOUT_PROMETHEUS, "serve", *args]
    return [sys.executable, "-m", "sigmaserve", "serve", *args]


def _refused(*args: str, without_prometheus: bool = False) -> str:
    """Run ``serve`` with a configuration it must refuse; returns its one line of stderr."""
    proc = subprocess.run(
        _serve_command(
            "--port", "0", "--no-reflection", *args, without_prometheus=without_prometheus
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sigmaserve: ")
    return lines[0]


def _free_port(family: socket.AddressFamily = socket.AF_INET, host: str = "127.0.0.1") -> int:
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _wait_serving(target: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no server on {target}")
            time.sleep(0.1)


def _serve_then_sigterm(target: str, *args: str, without_prometheus: bool = False) -> str:
    """Start ``serve``, wait until it answers health, SIGTERM it; returns its stderr."""
    proc = subprocess.Popen(
        _serve_command(*args, without_prometheus=without_prometheus),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        _wait_serving(target, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    return stderr


# ---- B2: auth silently off --------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "  \n\t\n"])
def test_an_empty_token_file_refuses_to_start(tmp_path, content):
    token_file = tmp_path / "token"
    token_file.write_text(content)
    line = _refused("--token-file", str(token_file))
    assert str(token_file) in line and "empty" in line


def test_an_unreadable_token_file_refuses_to_start(tmp_path):
    line = _refused("--token-file", str(tmp_path / "missing"))
    assert "--token-file" in line and "No such file" in line
    line = _refused("--token-file", str(tmp_path))  # a directory
    assert "--token-file" in line


def test_a_blank_token_from_the_environment_refuses_to_start():
    proc = subprocess.run(
        _serve_command("--port", "0"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SIGMASERVE_TOKEN": "   "},
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "sigmaserve: --token: the token is blank; refusing to start without auth"
    )


# ---- B8: start-up -----------------------------------------------------------------------


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> Path:
    """A self-signed certificate with its key, and a second key that does not match it."""
    d = tmp_path_factory.mktemp("tls")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", str(d / "server.key"), "-out", str(d / "server.pem"),
             "-days", "2", "-subj", "/CN=localhost")  # fmt: skip
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", str(d / "other.key"))  # fmt: skip
    return d


def test_missing_tls_files_are_named(tls_files, tmp_path):
    missing = str(tmp_path / "nope.key")
    line = _refused("--tls-cert", str(tls_files / "server.pem"), "--tls-key", missing)
    assert line == f"sigmaserve: --tls-key: cannot read {missing}: No such file or directory"
    line = _refused("--tls-cert", missing, "--tls-key", str(tls_files / "server.key"))
    assert line.startswith("sigmaserve: --tls-cert: cannot read")
    line = _refused("--tls-key", str(tls_files / "server.key"))
    assert "needs both --tls-cert and --tls-key" in line


def test_a_key_that_does_not_match_the_certificate_is_named(tls_files):
    line = _refused(
        "--tls-cert", str(tls_files / "server.pem"), "--tls-key", str(tls_files / "other.key")
    )
    assert "does not match the certificate" in line
    assert "Failed to bind" not in line


def test_a_file_that_is_not_pem_is_refused(tls_files, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    line = _refused("--tls-cert", str(junk), "--tls-key", str(tls_files / "server.key"))
    assert "cannot load" in line


def test_a_taken_metrics_port_is_named():
    pytest.importorskip("prometheus_client")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        line = _refused("--metrics-port", str(port))
    assert f"--metrics-port: cannot listen on 127.0.0.1:{port}" in line
    assert "in use" in line


def test_a_taken_grpc_port_is_one_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run(
            _serve_command("--port", str(port)), capture_output=True, text=True, timeout=60
        )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and str(port) in proc.stderr


def test_an_unknown_log_level_is_one_line():
    line = _refused("--log-level", "chatty")
    assert line == "sigmaserve: --log-level: unknown level 'chatty'"


def test_ipv6_loopback_literal():
    try:
        port = _free_port(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    stderr = _serve_then_sigterm(f"[::1]:{port}", "--host", "::1", "--port", str(port))
    assert f"listening on [::1]:{port}" in stderr


def test_token_help_warns_about_the_process_list():
    proc = subprocess.run(_serve_command("--help"), capture_output=True, text=True, timeout=60)
    help_text = " ".join(proc.stdout.split())
    assert "shows in the process list" in help_text
    assert "--token-file or SIGMASERVE_TOKEN" in help_text


# ---- B11: without the optional extras ---------------------------------------------------


def test_sigterm_without_prometheus_client_ends_cleanly():
    port = _free_port()
    stderr = _serve_then_sigterm(
        f"127.0.0.1:{port}", "--port", str(port), "--no-reflection", without_prometheus=True
    )
    assert "AttributeError" not in stderr
    assert "stopped" in stderr


def test_metrics_without_prometheus_client_is_one_line():
    line = _refused("--metrics-port", "9100", without_prometheus=True)
    assert "prometheus-client" in line
