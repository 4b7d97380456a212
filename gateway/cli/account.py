"""`gateway account export`: a customer's data, audited."""

import argparse
import getpass
from pathlib import Path

from gateway.cli.support import Commands, private_binary_file, with_gateway


def cmd_account_export(args: argparse.Namespace) -> int:
    from gateway.services.privacy import EXPORT_COLUMNS, Reader
    from gateway.tabular import tables_json, tables_zip

    # The service holds the reason to the API's and the console's rule (one line, exit 2).
    reader = Reader(f"cli:{getpass.getuser()}", args.reason, args.legal_request)
    tables = with_gateway(args, lambda gw: gw.services.privacy.export(args.id, reader))
    data = tables_json(tables) if args.format == "json" else tables_zip(tables, EXPORT_COLUMNS)
    out = Path(args.out)
    with private_binary_file(out) as sink:
        sink.write(data)
    print(f"wrote {out} (this read is recorded in the account's access audit log)")
    return 0


def register(cli: Commands) -> None:
    account = cli.group("account", help="customer accounts",
                        example="gateway account export --id acc_7Hk2... --reason "
                                "'subject access request, ticket 4411' --out acc.json")
    export = account.command(
        "export", cmd_account_export, help="export an account's data (audited)",
        example="gateway account export --id acc_7Hk2... --reason "
                "'subject access request, ticket 4411' --format csv --out acc.zip")
    export.add_argument("--id", required=True, help="account id, acc_...")
    export.add_argument("--reason", required=True, help="why; kept in the audit log")
    export.add_argument("--legal-request", metavar="ID",
                        help="the legal request this export serves (lr_...): its audit "
                             "entry is withheld from the customer while the request is held")
    export.add_argument("--format", choices=("json", "csv"), default="json",
                        help="the file's format: JSON, or a ZIP of CSV files")
    export.add_argument("--out", required=True, help="the file to write")
