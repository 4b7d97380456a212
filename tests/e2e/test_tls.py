"""`gateway serve` terminating TLS itself: TLS 1.3 only, as the privacy policy promises."""

import datetime as dt
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.databases import fresh_database
from tests.support.nodes import LitecoinRegtest, free_port
from tests.support.stack import gateway_env, run_cli


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "tls.crt", tmp / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def client(cert: Path, version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


def test_tls_13_only_and_hsts(tmp_path: Path, litecoin: LitecoinRegtest) -> None:
    import http.client

    cert, key = self_signed(tmp_path)
    port = free_port()
    with fresh_database("sqlite", tmp_path) as url:
        env = gateway_env(url, litecoin, port, GATEWAY_SERVER__TLS_CERT=str(cert),
                          GATEWAY_SERVER__TLS_KEY=str(key))
        assert run_cli(env, "db", "upgrade").returncode == 0
        log = (tmp_path / "tls.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"],
                                env={**__import__("os").environ, **env},
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn = http.client.HTTPSConnection(
                        "127.0.0.1", port, context=client(cert, ssl.TLSVersion.TLSv1_3),
                        timeout=2)
                    conn.request("GET", "/healthz")
                    resp = conn.getresponse()
                    break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, (
                        (tmp_path / "tls.log").read_text(errors="replace")[-3000:])
                    time.sleep(0.2)
            assert resp.status == 200
            assert resp.getheader("Strict-Transport-Security", "").startswith("max-age=")
            assert conn.sock.version() == "TLSv1.3"  # type: ignore[union-attr]

            old = http.client.HTTPSConnection(
                "127.0.0.1", port, context=client(cert, ssl.TLSVersion.TLSv1_2), timeout=5)
            with pytest.raises(ssl.SSLError):
                old.request("GET", "/healthz")
                old.getresponse()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            log.close()
