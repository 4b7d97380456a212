"""`gateway voucher create|list|revoke` as the operator runs them (docs/vouchers.md): the
codes go to stdout once, one a line, and only their keyed hashes to the database; a
mistake is one clear line."""

import json
import re
import sqlite3
from pathlib import Path

from gateway.domain.vouchers import normalise
from tests.support.databases import fresh_database
from tests.support.keys import security_env
from tests.support.stack import run_cli

PLANS = json.dumps({"vps-small": {"price": "8.00", "currency": "EUR", "period": "1 month"}})


def test_create_prints_the_codes_once_list_and_revoke(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        env = {"GATEWAY_DATABASE__URL": url, "GATEWAY_PLANS": PLANS, **security_env()}
        made = run_cli(env, "voucher", "create", "--count", "3", "--value", "10.00",
                       "--currency", "eur", "--expires", "2027-12-31", "--label", "shop A")
        assert made.returncode == 0, made.stderr
        codes = made.stdout.split()
        assert len(codes) == 3 and all(re.fullmatch(r"([0-9A-Z]{5}-){3}[0-9A-Z]{5}", c)
                                       for c in codes)
        assert all(normalise(c) == c.replace("-", "") for c in codes)
        assert "shown this once" in made.stderr and "10.00 EUR" in made.stderr
        plan = run_cli(env, "voucher", "create", "--count", "1", "--plan", "vps-small",
                       "--periods", "2")
        assert plan.returncode == 0, plan.stderr
        listed = run_cli(env, "voucher", "list")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert len(lines) == 2 and "16.00 EUR (2 x vps-small)" in lines[0]
        assert "0/3 redeemed" in lines[1] and "expires 2028-01-01T00:00:00Z" in lines[1]
        assert "shop A" in lines[1]
        batch = lines[1].split()[0]
        revoked = run_cli(env, "voucher", "revoke", batch)
        assert revoked.returncode == 0 and "3 unredeemed code(s) no longer work" in \
            revoked.stdout
        assert "revoked" in run_cli(env, "voucher", "list").stdout.splitlines()[1]
        path = url.removeprefix("sqlite+aiosqlite:///")
        dump = "\n".join(sqlite3.connect(path).iterdump())
        assert not any(c.replace("-", "") in dump.replace("-", "") for c in codes)


def test_mistakes_are_one_clear_line(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        env = {"GATEWAY_DATABASE__URL": url, "GATEWAY_PLANS": PLANS, **security_env()}
        for args, said in [
                (("--count", "2", "--value", "10.00"), "--currency: is required"),
                (("--count", "2", "--value", "ten", "--currency", "EUR"), "--value:"),
                (("--count", "0", "--value", "1.00", "--currency", "EUR"), "count"),
                (("--count", "1", "--plan", "nope"), "no plan 'nope'"),
                (("--count", "1", "--value", "1.00", "--currency", "EUR", "--expires",
                  "soon"), "--expires:")]:
            done = run_cli(env, "voucher", "create", *args)
            assert done.returncode != 0 and not done.stdout
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
            assert said in done.stderr, done.stderr
        unknown = run_cli(env, "voucher", "revoke", "vbt_none")
        assert unknown.returncode != 0 and "voucher batch not found" in unknown.stderr
