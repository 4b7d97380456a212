"""Every deployment file under config/ (and the Dockerfiles) checked by the tool the
operator would use: systemd-analyze, nginx -t, tor --verify-config, promtool, hadolint.
Each test fails, never skips, when its tool is missing (`make setup` installs them)."""

import json
import re
import shutil
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.cli import run_gateway
from tests.support.deployment import (
    CONFIG,
    HOSTNAME,
    ROOT,
    Nginx,
    readme_toml,
    run,
    substitute,
    tool,
)
from tests.support.keys import random_xpub, security_env
from tests.support.nodes import free_port

UNITS = ("gateway.service", "gateway-reconcile.service", "gateway-reconcile.timer",
         "gateway-backup-offsite.service", "gateway-backup-offsite.timer",
         "gateway@.service")


def _units(tmp_path: Path) -> Path:
    """The shipped units, with the virtualenv of this checkout in place of
    /opt/gateway/.venv (systemd-analyze checks that ExecStart's binary exists)."""
    gateway = Path(sys.executable).parent / "gateway"
    assert gateway.exists(), gateway
    folder = tmp_path / "units"
    folder.mkdir()
    for name in UNITS:
        text = (CONFIG / "systemd" / name).read_text()
        (folder / name).write_text(text.replace("/opt/gateway/.venv/bin/gateway",
                                                str(gateway)))
    return folder


def test_systemd_units_verify_cleanly_and_are_hardened(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    folder = _units(tmp_path)
    # A template is verified as an instance of it.
    result = run(analyze, "verify", "--man=no",
                 *(f"./{u.replace('@.', '@a.')}" for u in UNITS), cwd=folder)
    # Unknown keys and bad values are only warnings (exit 0): any output fails the test.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr)
    # The same check does see mistakes (so the silence above means something).
    broken = folder / "broken.service"
    broken.write_text((folder / "gateway.service").read_text()
                      .replace("ProtectSystem=strict", "ProtectSystem=stricter"))
    said = run(analyze, "verify", "--man=no", "./broken.service", cwd=folder)
    assert "protect system value" in said.stdout + said.stderr
    # systemd's own exposure score of the service, offline: 0 (locked) .. 10 (exposed).
    security = run(analyze, "security", "--offline=yes", "--threshold=20", "--no-pager",
                   "./gateway.service", cwd=folder)
    assert security.returncode == 0, security.stdout + security.stderr
    level = re.search(r"Overall exposure level for gateway.service: ([0-9.]+)",
                      security.stdout)
    assert level and float(level.group(1)) <= 2.0, security.stdout[-300:]
    # The template (several gateways on one host) is gateway.service with the
    # instance's folders: as locked down, and every path its own.
    template = run(analyze, "security", "--offline=yes", "--threshold=20", "--no-pager",
                   "./gateway@a.service", cwd=folder)
    level = re.search(r"Overall exposure level for gateway@a.service: ([0-9.]+)",
                      template.stdout)
    assert level and float(level.group(1)) <= 2.0, template.stdout[-300:]
    one = (CONFIG / "systemd" / "gateway.service").read_text()
    many = (CONFIG / "systemd" / "gateway@.service").read_text()
    assert many.split("[Unit]", 1)[1].replace("/%i", "").replace(" %i", "") == \
        one.split("[Unit]", 1)[1].replace("(SQLite database, backups)", "(SQLite, backups)")

    unit = (CONFIG / "systemd" / "gateway.service").read_text()
    lines = set(unit.splitlines())
    # The system calls the gateway makes stay allowed: setpriority (hashing threads nice
    # themselves, gateway/adapters/passwords.py), and what Python's asyncio needs.
    def expand(group: str) -> set[str]:
        listed = run(analyze, "syscall-filter", group).stdout.splitlines()[1:]
        names = {w.strip() for w in listed if w.strip() and not w.strip().startswith("#")}
        return set().union(*(expand(n) if n.startswith("@") else {n} for n in names))

    denied: set[str] = set()
    for line in lines:
        if line.startswith("SystemCallFilter=~"):
            for group in line.removeprefix("SystemCallFilter=~").split():
                denied |= expand(group) if group.startswith("@") else {group}
    assert denied, "no denied system calls found: the check would pass vacuously"
    for needed in ("setpriority", "epoll_wait", "getrandom", "socket", "connect", "clone3",
                   "execve", "futex"):
        assert needed not in denied, needed
    assert "SystemCallErrorNumber=EPERM" in lines
    for required in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                     "CapabilityBoundingSet=", "Restart=on-failure", "DynamicUser=yes"):
        assert required in lines, required
    # Every key file `gateway keys generate` writes reaches the service as a credential,
    # and the configuration is pointed at the credential, not at /etc.
    for name, key in (("session.key", "SECURITY__SESSION_KEY"),
                      ("index.key", "SECURITY__INDEX_KEY"),
                      ("data.keys", "SECURITY__DATA_KEYS"), ("backup.key", "BACKUP__KEY")):
        assert f"LoadCredential={name}:/etc/gateway/{name}" in lines
        assert f"Environment=GATEWAY_{key}_FILE=%d/{name}" in lines


def _service_commands(unit: str) -> tuple[dict[str, str], list[str]]:
    """A oneshot unit's Environment= defaults and its ExecStart=/ExecStartPost= command
    lines in order, as systemd hands them to the program: continuation lines joined,
    `$VAR` left for the shell to expand from the same environment, `$$` and `%%` undone."""
    text = re.sub(r"\\\n\s*", " ", unit)
    env = dict(line.removeprefix("Environment=").split("=", 1)
               for line in text.splitlines() if line.startswith("Environment="))
    commands = [line.split("=", 1)[1] for line in text.splitlines()
                if line.startswith(("ExecStart=", "ExecStartPost="))]
    return env, [c.replace("$$", "\x00").replace("%%", "%") for c in commands]


def test_the_offsite_copy_takes_the_deletion_ledger_and_says_when_it_succeeded(
        tmp_path: Path) -> None:
    """Review of issue 28 (promises 12 and 13): the shipped off-site copy took only the
    backups, so restoring from it brought erased customers back; and its failure was
    seen by no one. The unit's own commands, run against folders standing for the backup
    folder, the other machine and node_exporter's textfile folder."""
    import shlex
    import subprocess

    unit = (CONFIG / "systemd" / "gateway-backup-offsite.service").read_text()
    env, commands = _service_commands(unit)
    backups, remote, textfiles = (tmp_path / "backups", tmp_path / "remote",
                                  tmp_path / "textfiles")
    for folder in (backups, remote, textfiles):
        folder.mkdir()
    places = {"/var/lib/private/gateway/backups/": f"{backups}/",
              "/var/lib/private/gateway/backups/deletion-ledger.txt":
                  str(backups / "deletion-ledger.txt"),
              "/var/lib/prometheus/node-exporter/": f"{textfiles}/"}

    def run_unit() -> None:
        environment = {**{k: places.get(v, v) for k, v in env.items()},
                       "GATEWAY_OFFSITE": f"{remote}/", "PATH": "/usr/bin:/bin"}
        for command in commands:
            for old in sorted(places, key=len, reverse=True):
                command = command.replace(old, places[old])
            argv = [a.replace("\x00", "$") for a in shlex.split(command)]
            assert argv[0] == "/bin/sh", argv
            done = subprocess.run(argv, env=environment, capture_output=True, text=True,
                                  timeout=60, check=False)
            assert done.returncode == 0, done.stderr

    def metric() -> float:
        line = (textfiles / "gateway_offsite.prom").read_text()
        name, value = line.split()
        assert name == "gateway_offsite_last_success_timestamp_seconds"
        return float(value)

    old, new = "gateway-20260101T000000Z.sqlite.enc", "gateway-20260102T000000Z.sqlite.enc"
    for name in (old, new):
        (backups / name).write_bytes(b"encrypted")
    run_unit()  # no ledger yet: nothing was erased, and that is no failure
    assert sorted(p.name for p in remote.iterdir()) == [old, new]
    first = metric()
    assert first > 0

    ledger = "acc_1 2026-01-01T12:00:00Z\n"
    (backups / "deletion-ledger.txt").write_text(ledger)
    for other in ("deletion-ledger.txt.lock", "deletion-ledger.txt.new", "notes.txt"):
        (backups / other).write_text("not copied")
    (backups / old).unlink()  # pruned by the gateway
    run_unit()
    assert sorted(p.name for p in remote.iterdir()) == ["deletion-ledger.txt", new]
    assert (remote / "deletion-ledger.txt").read_text() == ledger
    assert metric() >= first
    assert not list(textfiles.glob("*.tmp"))


def test_nginx_site_passes_nginx_t_and_says_what_the_gateway_expects(tmp_path: Path) -> None:
    nginx = Nginx(tmp_path / "nginx", free_port(), free_port(), free_port(), free_port())
    result = nginx.check()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    site = (CONFIG / "nginx" / "gateway.conf").read_text()
    # Nothing older, in the default server of the port too (it decides the versions).
    assert site.count("ssl_protocols TLSv1.3;") == 2 and "TLSv1.2" not in site
    assert re.search(r'add_header Strict-Transport-Security "max-age=\d+[^"]*" always;', site)
    from gateway.http.app import MAX_BODY

    assert MAX_BODY == 1024 * 1024 and site.count("client_max_body_size 1m;") == 2
    # The gateway believes the last value of each of these from trusted proxies only.
    for header in ("X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-For"):
        assert f"proxy_set_header {header} " in site
    assert site.count("proxy_buffering off;") == 2  # the event streams, both servers
    # The onion server's peer is Tor on 127.0.0.1, a trusted proxy: appending to the
    # visitor's own X-Forwarded-For would let them name any address (and take its limits).
    onion = site[site.index('server_name "~^[a-z2-7]{56}\\.onion$";'):]
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in onion
    assert "$proxy_add_x_forwarded_for" not in onion
    # A broken copy is refused: the check is real.
    (nginx.folder / "gateway.conf").write_text(
        (nginx.folder / "gateway.conf").read_text().replace("ssl_protocols TLSv1.3;",
                                                            "ssl_protocols TLSv9;"))
    assert nginx.check().returncode != 0


def _server_blocks(site: str) -> list[str]:
    """The text of each top-level `server { }` of the site, nested braces included."""
    blocks = []
    for start in (m.start() for m in re.finditer(r"(?m)^server \{", site)):
        depth, end = 0, start
        for end in range(start, len(site)):
            depth += {"{": 1, "}": -1}.get(site[end], 0)
            if depth == 0 and site[end] == "}":
                break
        blocks.append(site[start:end + 1])
    return blocks


def _ask(port: int, request: bytes, tls: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        conn: socket.socket = raw
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = context.wrap_socket(raw, server_hostname=HOSTNAME)
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer


def test_nginx_logs_no_client_address_and_no_link(tmp_path: Path) -> None:
    """Issue 28, item 11: with the gateway down, nginx at its default error level logs
    the client's address and the request line (a reset link with its token) of every
    request it cannot pass on. The shipped site logs nothing of a request: no access
    log, error log at `crit`, in every server of the file."""
    site = (CONFIG / "nginx" / "gateway.conf").read_text()
    blocks = _server_blocks(site)
    assert len(blocks) == 4, len(blocks)
    for block in blocks:
        assert re.search(r"(?m)^    access_log off;$", block), block[:200]
        assert re.search(r"(?m)^    error_log \S+ crit;$", block), block[:200]
    assert not re.search(r"error_log \S+( (debug|info|notice|warn|error))?;", site)
    # The gateway is not listening: nginx answers 502 and would log why, with the request.
    nginx = Nginx(tmp_path / "nginx", free_port(), free_port(), free_port(), free_port())
    nginx.start()
    try:
        link = "/reset?token=probe-token-5b1e77"
        onion = "a" * 56 + ".onion"
        for port, host, tls in ((nginx.https_port, HOSTNAME, True),
                                (nginx.onion_port, onion, False),
                                (nginx.http_port, HOSTNAME, False)):
            answer = _ask(port, f"GET {link} HTTP/1.1\r\nHost: {host}\r\n"
                                "Connection: close\r\n\r\n".encode(), tls)
            assert answer.split(b"\r\n", 1)[0] in (b"HTTP/1.1 502 Bad Gateway",
                                                    b"HTTP/1.1 301 Moved Permanently"), answer
    finally:
        nginx.stop()
    logs = {p.name: p.read_text(errors="replace") for p in nginx.folder.glob("*.log")}
    assert "error.log" in logs  # nginx.conf's own log, at info: it would show a request
    for name, text in logs.items():
        assert "probe-token-5b1e77" not in text, f"{name} holds the reset link:\n{text}"
        assert "client: 127.0.0.1" not in text, f"{name} holds a client address:\n{text}"


def test_tor_onion_snippet_verifies(tmp_path: Path) -> None:
    tor = tool("tor")
    hidden, data = tmp_path / "hs", tmp_path / "data"
    hidden.mkdir(mode=0o700)
    data.mkdir(mode=0o700)
    snippet = substitute((CONFIG / "tor" / "torrc").read_text(),
                         {"/var/lib/tor/gateway/": f"{hidden}/"})
    torrc = tmp_path / "torrc"
    torrc.write_text(snippet + f"\nDataDirectory {data}\nSocksPort 0\n")
    result = run(tor, "--verify-config", "-f", str(torrc), "--defaults-torrc", "/dev/null")
    assert result.returncode == 0 and "Configuration was valid" in result.stdout, result.stdout
    assert "HiddenServicePort 80 127.0.0.1:8081" in snippet  # nginx's onion listener
    assert re.search(r"(?m)^SafeLogging 1$", snippet)  # no addresses in Tor's log
    assert "listen 127.0.0.1:8081;" in (CONFIG / "nginx" / "gateway.conf").read_text()
    torrc.write_text(snippet.replace("127.0.0.1:8081", "127.0.0.1:99999")
                     + f"\nDataDirectory {data}\nSocksPort 0\n")
    bad = run(tor, "--verify-config", "-f", str(torrc), "--defaults-torrc", "/dev/null")
    assert bad.returncode != 0


def test_prometheus_rules_check_and_their_unit_tests_pass(tmp_path: Path) -> None:
    promtool = tool("promtool")
    rules = CONFIG / "prometheus" / "alerts.yml"
    result = run(promtool, "check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    # promtool test rules reads rule_files relative to the test file.
    shutil.copy(rules, tmp_path / "alerts.yml")
    shutil.copy(ROOT / "tests" / "support" / "deployment" / "alerts.test.yml", tmp_path)
    tested = run(promtool, "test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    names = {r["alert"] for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]}
    for wanted in ("GatewayWatcherLagging", "GatewayNodeUnreachable", "GatewayOutboxBacklog",
                   "GatewayOutboxOldestPending", "GatewayWebhookEndpointsFailing",
                   "GatewayBackupTooOld", "GatewayRetentionTooOld", "GatewayRatesUnavailable",
                   "GatewayOffsiteCopyTooOld"):
        assert wanted in names


def test_grafana_dashboard_is_valid_json_with_a_query_in_every_panel() -> None:
    doc = json.loads((CONFIG / "grafana" / "gateway-dashboard.json").read_text())
    assert doc["uid"] and doc["title"] and doc["panels"]
    for panel in doc["panels"]:
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}


def _final_stage(dockerfile: str) -> str:
    return re.split(r"^FROM ", dockerfile, flags=re.M)[-1]


def test_dockerfiles_lint_clean_and_the_image_is_built_as_promised() -> None:
    hadolint = tool("hadolint")
    files = [ROOT / "Dockerfile", CONFIG / "docker" / "litecoind.Dockerfile"]
    result = run(hadolint, "--no-color", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.M)) == 2  # multi-stage
    final = _final_stage(text)
    assert re.search(r"^USER [1-9][0-9]*", final, flags=re.M)  # numeric, not root
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert "COPY --from=build /opt/gateway/.venv" in final
    for build_tool in ("gcc", "build-essential", "make ", "pip install"):
        assert build_tool not in final, build_tool
    # What the image copies in is what the package needs (templates and migrations are
    # package data).
    for folder in ("gateway", "chains", "webhooks"):
        assert f"COPY {folder} ./{folder}" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "secrets" in ignored and ".venv" in ignored


def _compose_env(service: dict[str, Any], secrets: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, value in service["environment"].items():
        value = str(value)
        value = re.sub(r"\$\{LTC_XPUB:\?[^}]*\}", random_xpub(), value)
        value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
        env[key] = value.replace("/run/secrets/", f"{secrets}/")
    return env


def test_compose_file_is_consistent_and_its_gateway_configuration_checks(
        tmp_path: Path) -> None:
    """No container engine here: the compose file is read as YAML, its references
    checked, and its gateway environment given to `gateway config check`."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "litecoind", "migrate", "gateway"} <= set(services)
    for service in services.values():
        build = service.get("build")
        if isinstance(build, dict):
            assert (ROOT / build["context"] / build["dockerfile"]).exists()
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], secret
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["gateway"]["depends_on"]["migrate"]["condition"] == \
        "service_completed_successfully"
    # The postgres image's major version is the one whose pg_dump the gateway image has.
    assert services["postgres"]["image"].startswith("postgres:15-bookworm")

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    keys = security_env()
    files = {"session_key": keys["GATEWAY_SECURITY__SESSION_KEY"],
             "index_key": keys["GATEWAY_SECURITY__INDEX_KEY"],
             "data_keys": keys["GATEWAY_SECURITY__DATA_KEYS"],
             "backup_key": keys["GATEWAY_BACKUP__KEY"],
             "database_url": "postgresql+asyncpg://gateway:pw@postgres.invalid:5432/gateway",
             "ltc_rpc_url": "http://litecoind.invalid:19443"}
    for name, value in files.items():
        (secrets / name).write_text(value + "\n")
    env = _compose_env(services["gateway"], secrets)
    env["GATEWAY_BACKUP__DIR"] = str(tmp_path / "backups")  # /var/lib/gateway here
    checked = run_config_check(env)
    assert checked.returncode == 0, checked.stderr
    assert "<file " in checked.stdout and "pw@" not in checked.stdout


def run_config_check(env: dict[str, str]) -> "Any":
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return run_gateway(["config", "check"], {**clean, **env})


def test_the_dockerfiles_build_context_makes_a_complete_package(tmp_path: Path) -> None:
    """What the image's build stage does, short of a container engine: from only the files
    the Dockerfile copies, a wheel that holds the templates, static files and migrations
    the gateway needs at run time."""
    import zipfile

    text = (ROOT / "Dockerfile").read_text()
    context = tmp_path / "context"
    context.mkdir()
    for source, _ in re.findall(r"^COPY (?!--from)(\S+) (\S+)$", text, flags=re.M):
        target = context / source
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / source, target)
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--wheel-dir", str(tmp_path / "wheels"), str(context), timeout=120)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [wheel] = (tmp_path / "wheels").glob("packetra_gateway-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for wanted in ("gateway/http/templates/pay.html", "gateway/migrations/env.py",
                   "gateway/http/static/", "chains/utxo/adapter.py", "webhooks/worker.py"):
        assert any(n.startswith(wanted) for n in names), wanted
    assert any(re.match(r"gateway/migrations/versions/0001.*\.py$", n) for n in names)
    assert not any(n.startswith("tests/") for n in names)


def test_the_service_hands_the_readme_configuration_its_secrets_as_credentials(
        tmp_path: Path) -> None:
    """What systemd does for gateway.service, done by hand: each LoadCredential= file
    copied to the credentials directory (%d), the unit's Environment= lines set. The
    README's gateway.toml then reads every key from there, not from /etc."""
    etc, creds = tmp_path / "etc", tmp_path / "credentials"
    etc.mkdir()
    creds.mkdir()
    generated = run_config_check_args(["keys", "generate", "--out", str(etc)])
    assert generated.returncode == 0, generated.stderr
    (etc / "database.url").write_text(f"sqlite+aiosqlite:///{tmp_path}/gateway.db\n")
    (etc / "ltc-rpc.url").write_text("http://u:p@127.0.0.1:9332\n")
    toml = substitute(readme_toml(), {"/etc/gateway": str(etc),
                                      "/var/lib/gateway": str(tmp_path / "var"),
                                      '"zpub_OF_YOUR_WALLET"': f'"{random_xpub()}"'})
    (etc / "gateway.toml").write_text(toml)
    env: dict[str, str] = {}
    for line in (CONFIG / "systemd" / "gateway.service").read_text().splitlines():
        if line.startswith("LoadCredential="):
            name, source = line.removeprefix("LoadCredential=").split(":", 1)
            assert source.startswith("/etc/gateway/")
            # The file README's configuration names is the one the unit loads.
            assert f'"{source}"' in readme_toml(), source
            shutil.copy(etc / Path(source).name, creds / name)
        elif line.startswith("Environment="):
            key, value = line.removeprefix("Environment=").split("=", 1)
            env[key] = value.replace("%d", str(creds))
    assert env.pop("GATEWAY_CONFIG") == "/etc/gateway/gateway.toml"
    env["GATEWAY_CONFIG"] = str(etc / "gateway.toml")
    checked = run_config_check(env)
    assert checked.returncode == 0, checked.stderr
    for name, key in (("session.key", "SECURITY__SESSION_KEY"),
                      ("data.keys", "SECURITY__DATA_KEYS"),
                      ("index.key", "SECURITY__INDEX_KEY"), ("backup.key", "BACKUP__KEY")):
        assert f"<file {creds / name} (env GATEWAY_{key}_FILE)>" in checked.stdout, name


def run_config_check_args(args: list[str]) -> "Any":
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return run_gateway(args, clean)
