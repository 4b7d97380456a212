import base64
import json
from pathlib import Path

import pytest

from gateway.config import ConfigError, load
from tests.support.keys import b64key, random_xpub, security_env


def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "GATEWAY_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        **security_env(),
    }


def test_environment_overrides_and_nested_names(tmp_path: Path) -> None:
    env = base_env(tmp_path) | {
        "GATEWAY_COINS__LTC__KIND": "utxo",
        "GATEWAY_COINS__LTC__NETWORK": "litecoin-regtest",
        "GATEWAY_COINS__LTC__RPC_URL": "http://u:p@127.0.0.1:1",
        "GATEWAY_COINS__LTC__XPUB": random_xpub(),
        "GATEWAY_SERVER__PORT": "9000",
        "GATEWAY_RATES__FIXED": json.dumps({"LTC-EUR": "80"}),
    }
    settings = load(None, env)
    assert settings.server.port == 9000
    assert settings.confirmations("LTC") == 6
    assert settings.rates.fixed == {"LTC-EUR": "80"}


def test_env_beats_file_and_secret_files_are_read(tmp_path: Path) -> None:
    key_file = tmp_path / "session.key"
    key_file.write_text(b64key() + "\n")
    cfg = tmp_path / "g.toml"
    cfg.write_text(f'[security]\nsession_key_file = "{key_file}"\n')
    env = base_env(tmp_path)
    del env["GATEWAY_SECURITY__SESSION_KEY"]
    settings = load(cfg, env)
    assert settings.security.session_key.get_secret_value() == key_file.read_text().strip()
    other = b64key()
    settings = load(cfg, env | {"GATEWAY_SECURITY__SESSION_KEY": other})
    assert settings.security.session_key.get_secret_value() == other


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"GATEWAY_SERVER__PORT": "99999"}, "server.port"),
        ({"GATEWAY_SECURITY__SESSION_KEY": "c2hvcnQ="}, "security.session_key: must decode"),
        ({"GATEWAY_SECURITY__DATA_KEYS": '["nokeyid"]'}, "security.data_keys"),
        ({"GATEWAY_DATABASE__URL": "mysql://x"}, "database.url"),
        ({"GATEWAY_SERVER__BOGUS": "1"}, "server.bogus: is not a known key"),
        ({"GATEWAY_COINS__ETH__KIND": "nosuch"}, "coins.ETH.kind"),
        ({"GATEWAY_COINS__ETH__KIND": "evm"}, "coins.ETH: a native coin needs rpc_url"),
        ({"GATEWAY_COINS__ETH__KIND": "evm", "GATEWAY_COINS__ETH__XPUB": "x"}, "coins.ETH.xpub"),
        ({"GATEWAY_COINS__LTC__KIND": "utxo", "GATEWAY_COINS__LTC__NETWORK": "doge"},
         "coins.LTC.network"),
        ({"GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS": '["nope"]'}, "allow_private_targets"),
        ({"GATEWAY_INVOICES__EXPIRY_MINUTES": "0"}, "invoices.expiry_minutes"),
        ({"GATEWAY_INVOICES__BLOCK_TIME_TOLERANCE_MINUTES": "121"},
         "invoices.block_time_tolerance_minutes"),
        ({"GATEWAY_INVOICES__BLOCK_TIME_TOLERANCE_MINUTES": "-1"},
         "invoices.block_time_tolerance_minutes"),
        ({"GATEWAY_RETENTION__DELETION_GRACE_DAYS": "30"}, "within 30 days"),
        ({"GATEWAY_RETENTION__DELETION_GRACE_DAYS": "31"}, "retention.deletion_grace_days"),
        ({"GATEWAY_BACKUP__KEY": "c2hvcnQ="}, "backup.key"),
        # Each family validates its own coins, with the same one-line errors.
        ({"GATEWAY_COINS__LTC__KIND": "utxo", "GATEWAY_COINS__LTC__NETWORK": "litecoin",
          "GATEWAY_COINS__LTC__XPUB": random_xpub()}, "coins.LTC.rpc_url: is required"),
        ({"GATEWAY_COINS__LTC__NETWORK": "litecoin"}, "coins.LTC.kind: is required"),
        ({"GATEWAY_COINS__LTC__KIND": "utxo", "GATEWAY_COINS__LTC__NETWORK": "litecoin",
          "GATEWAY_COINS__LTC__RPC_URL": "http://u:p@127.0.0.1:1",
          "GATEWAY_COINS__LTC__XPUB": random_xpub(), "GATEWAY_COINS__LTC__CHAIN_ID": "1"},
         "coins.LTC.chain_id: is not a known key"),
        ({"GATEWAY_COINS__LTC__KIND": "utxo", "GATEWAY_COINS__LTC__NETWORK": "litecoin",
          "GATEWAY_COINS__LTC__RPC_URL": "http://u:p@127.0.0.1:1",
          "GATEWAY_COINS__LTC__XPUB": "xpubnonsense"}, "coins.LTC.xpub"),
        ({"GATEWAY_FAMILIES__EXTRA": '["no.such.family"]'},
         "families.extra: cannot import family module 'no.such.family'"),
        ({"GATEWAY_FAMILIES__EXTRA": '["tests.support.keys"]'},
         "families.extra: module 'tests.support.keys' has no FAMILY"),
    ],
)
def test_bad_configuration_names_the_key(
    tmp_path: Path, override: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(None, base_env(tmp_path) | override)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_required_key_and_file(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    del env["GATEWAY_DATABASE__URL"]
    with pytest.raises(ConfigError, match="database: is required"):
        load(None, env)
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "missing.toml", base_env(tmp_path))
    cfg = tmp_path / "g.toml"
    cfg.write_text('[security]\nindex_key_file = "/nonexistent/key"\n')
    env = base_env(tmp_path)
    del env["GATEWAY_SECURITY__INDEX_KEY"]
    with pytest.raises(ConfigError, match=r"security\.index_key_file: cannot read"):
        load(cfg, env)


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    secret = base64.b64encode(b"x" * 8).decode()
    with pytest.raises(ConfigError) as info:
        load(None, base_env(tmp_path) | {"GATEWAY_SECURITY__INDEX_KEY": secret})
    assert secret not in str(info.value)


def test_example_config_documents_every_key() -> None:
    import tomllib

    from gateway.config import Settings

    root = Path(__file__).resolve().parents[2]
    example = tomllib.loads((root / "config" / "gateway.example.toml").read_text())
    text = (root / "config" / "gateway.example.toml").read_text()
    for section, field in Settings.model_fields.items():
        assert f"[{section}" in text, f"[{section}] is not documented"
        model = field.annotation
        sub = getattr(model, "model_fields", None)
        if sub is None:
            continue
        for key, info in sub.items():
            name = info.alias or key
            assert name in text, f"{section}.{name} is not documented"
    # and nothing documented that the model does not know
    for section, table in example.items():
        assert section in Settings.model_fields
        sub = getattr(Settings.model_fields[section].annotation, "model_fields", None)
        if sub is not None:
            for key in table:
                assert key.removesuffix("_file") in sub, f"{section}.{key} is unknown"


def test_a_whole_section_from_one_variable(tmp_path: Path) -> None:
    env = base_env(tmp_path) | {
        "GATEWAY_PLANS": '{"vps-small": {"price": "8.00", "currency": "EUR"}}',
        "GATEWAY_CONFIG_UNRELATED": "x",
    }
    assert load(None, env).plans["vps-small"].fiat().minor == 800
    with pytest.raises(ConfigError, match=r"plans\.vps-small\.price"):
        load(None, env | {"GATEWAY_PLANS": '{"vps-small": {"price": "8.001", "currency": "EUR"}}'})


def test_mail_queue_settings(tmp_path: Path) -> None:
    settings = load(None, base_env(tmp_path))
    assert settings.mail.retry_schedule_seconds[0] == 10 and settings.mail.max_age_hours == 24
    with pytest.raises(ConfigError, match=r"mail\.retry_schedule_seconds"):
        load(None, base_env(tmp_path) | {"GATEWAY_MAIL__RETRY_SCHEDULE_SECONDS": "[5, 0]"})
    with pytest.raises(ConfigError, match=r"mail\.max_age_hours"):
        load(None, base_env(tmp_path) | {"GATEWAY_MAIL__MAX_AGE_HOURS": "0"})


def test_metrics_listener_address(tmp_path: Path) -> None:
    def listen(value: str | None) -> tuple[str, int] | None:
        env = base_env(tmp_path)
        if value is not None:
            env["GATEWAY_SERVER__METRICS_LISTEN"] = value
        return load(None, env).server.metrics_address()

    assert listen(None) == ("127.0.0.1", 9464)  # loopback by default
    assert listen("10.1.2.3:9100") == ("10.1.2.3", 9100)
    cfg = tmp_path / "v6.toml"
    cfg.write_text('[server]\nmetrics_listen = "[::1]:9464"\n')
    assert load(cfg, base_env(tmp_path)).server.metrics_address() == ("::1", 9464)
    assert listen("") is None and listen("none") is None
    for bad in ("9464", "127.0.0.1", "host:port", "127.0.0.1:99999"):
        with pytest.raises(ConfigError, match=r"server\.metrics_listen"):
            listen(bad)


def test_an_extra_family_validates_its_own_coins(tmp_path: Path) -> None:
    from gateway import families

    env = base_env(tmp_path) | {
        "GATEWAY_FAMILIES__EXTRA": '["tests.support.fake_family"]',
        "GATEWAY_COINS__FAK__KIND": "fake", "GATEWAY_COINS__FAK__NODE": "n1",
    }
    try:
        settings = load(None, env)
        assert settings.coins["FAK"].kind == "fake"
        assert settings.confirmations("FAK") == 2  # the family's own default
        with pytest.raises(ConfigError, match=r"^coins\.FAK\.decimals: "):
            load(None, env | {"GATEWAY_COINS__FAK__DECIMALS": "99"})
    finally:
        families.unregister("fake")
    with pytest.raises(ConfigError, match=r"coins\.FAK\.kind: 'fake' is not a known chain"):
        load(None, base_env(tmp_path) | {"GATEWAY_COINS__FAK__KIND": "fake"})


def test_email_verification_is_on_by_default_and_needs_mail(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    del env["GATEWAY_ACCOUNTS__REQUIRE_EMAIL_VERIFICATION"]  # the tests' explicit opt-out
    with pytest.raises(ConfigError, match=r"require_email_verification is on \(the default\)"
                       r".*configure \[smtp\], or set require_email_verification = false"):
        load(None, env)
    smtp = {"GATEWAY_SMTP__HOST": "127.0.0.1", "GATEWAY_SMTP__FROM": "b@example.org"}
    assert load(None, env | smtp).accounts.require_email_verification is True


def test_session_lifetimes_are_bounded(tmp_path: Path) -> None:
    for key, value in (("GATEWAY_SECURITY__SESSION_HOURS", "169"),
                       ("GATEWAY_SECURITY__SESSION_IDLE_MINUTES", "1441")):
        with pytest.raises(ConfigError, match="less than or equal"):
            load(None, base_env(tmp_path) | {key: value})
    assert load(None, base_env(tmp_path) | {
        "GATEWAY_SECURITY__SESSION_HOURS": "168"}).security.session_hours == 168


@pytest.mark.parametrize("override", [
    {"GATEWAY_RETENTION__BACKUP_DAYS": "30"},  # the old default: 38 days in all
    {"GATEWAY_BACKUP__INTERVAL_HOURS": "168"},  # a weekly backup with the default keep
    {"GATEWAY_RETENTION__DELETION_GRACE_DAYS": "10"},
])
def test_grace_backups_and_intervals_must_fit_the_30_days_from_a_request(
    tmp_path: Path, override: dict[str, str],
) -> None:
    """Issue 28, items 1 and 2: an erased account's data is gone from the last backup
    only when that backup is pruned, so the grace, one retention run, the backups' keep
    and one pruning interval together must fit in the policy's 30 days."""
    with pytest.raises(ConfigError) as info:
        load(None, base_env(tmp_path) | override)
    line = str(info.value)
    assert "\n" not in line
    for name in ("[retention] deletion_grace_days", "interval_seconds", "backup_days",
                 "[backup] interval_hours", "within 30 days of the request"):
        assert name in line, line
    # The defaults fit, and so does a weekly backup kept for two weeks.
    settings = load(None, base_env(tmp_path))
    assert settings.deletion_bound().longest().days == 29
    load(None, base_env(tmp_path) | {"GATEWAY_BACKUP__INTERVAL_HOURS": "168",
                                      "GATEWAY_RETENTION__BACKUP_DAYS": "14"})


def test_register_and_lapsed_account_periods_are_validated(tmp_path: Path) -> None:
    """Issue 28, items 3 and 9: the lapsed-account period leaves its notice after the
    billing grace; a deletion-ledger entry outlives every backup that could restore the
    account (backup_days + one backup interval + 7 days); each period has its bounds."""
    base = base_env(tmp_path)
    settings = load(None, base)
    ret = settings.retention
    assert (ret.inactive_lapsed_days, ret.legal_request_days,
            ret.deletion_ledger_days) == (365, 1095, 60)

    with pytest.raises(ConfigError) as info:  # 21 + 1 + 7 = 29 days at least
        load(None, base | {"GATEWAY_RETENTION__DELETION_LEDGER_DAYS": "28"})
    line = str(info.value)
    assert "\n" not in line and "deletion_ledger_days (28)" in line, line
    assert "backup_days (21)" in line and "[backup] interval_hours (24 h)" in line, line
    assert load(None, base | {"GATEWAY_RETENTION__DELETION_LEDGER_DAYS": "29"})
    # Weekly backups kept 22 days (no grace, so within the 30 days) need 22 + 7 + 7.
    weekly = base | {"GATEWAY_RETENTION__DELETION_GRACE_DAYS": "0",
                     "GATEWAY_RETENTION__BACKUP_DAYS": "22",
                     "GATEWAY_BACKUP__INTERVAL_HOURS": "168"}
    with pytest.raises(ConfigError, match=r"deletion_ledger_days \(35\)"):
        load(None, weekly | {"GATEWAY_RETENTION__DELETION_LEDGER_DAYS": "35"})
    assert load(None, weekly | {"GATEWAY_RETENTION__DELETION_LEDGER_DAYS": "36"})

    with pytest.raises(ConfigError) as info:
        load(None, base | {"GATEWAY_RETENTION__INACTIVE_LAPSED_DAYS": "30",
                           "GATEWAY_BILLING__GRACE": "30 days"})
    assert "inactive_lapsed_days (30)" in str(info.value)
    assert "[billing] grace (30 days)" in str(info.value)

    for key, value in (("INACTIVE_LAPSED_DAYS", "29"), ("INACTIVE_LAPSED_DAYS", "1096"),
                       ("LEGAL_REQUEST_DAYS", "364"), ("LEGAL_REQUEST_DAYS", "3651"),
                       ("DELETION_LEDGER_DAYS", "0"), ("DELETION_LEDGER_DAYS", "3651")):
        with pytest.raises(ConfigError, match="than or equal"):
            load(None, base | {f"GATEWAY_RETENTION__{key}": value})
