"""`gateway openapi`: the OpenAPI 3.1 document, with or without a configuration."""

import argparse
import json
import os

from gateway.cli.support import Commands, settings_or_exit


def cmd_openapi(args: argparse.Namespace) -> int:
    from gateway.http.openapi import document
    from gateway.http.vocabulary import vocabulary

    if getattr(args, "config", None) or os.environ.get("GATEWAY_CONFIG"):
        settings = settings_or_exit(args)
        doc = document(settings.server.path_prefix, vocabulary(settings))
    else:  # generic: what depends on a configuration is left open
        doc = document()
    print(json.dumps(doc, indent=2))
    return 0


def register(cli: Commands) -> None:
    cli.command(
        "openapi", cmd_openapi,
        help="print the OpenAPI 3.1 document (no server, no database needed); without a "
             "configuration its coins, currencies, plans and datacenters are left open, "
             "with one they are the configured ones",
        example=["gateway openapi > openapi.json",
                 "gateway openapi -c /etc/gateway/gateway.toml > openapi.json"])
