"""`gateway openapi`: the OpenAPI 3.1 document, with or without a configuration."""

import argparse
import json
import os

from gateway.cli.support import Commands, settings_or_exit


def _configured(args: argparse.Namespace) -> bool:
    """A configuration file is named, or settings come from the environment
    (`GATEWAY_<SECTION>__<KEY>`, as in a container; not any other GATEWAY_* variable)."""
    from gateway.config import configured

    return configured(getattr(args, "config", None), os.environ)


def cmd_openapi(args: argparse.Namespace) -> int:
    from gateway.http.openapi import document
    from gateway.http.vocabulary import vocabulary

    if _configured(args):
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
             "configuration (no -c, no GATEWAY_CONFIG or GATEWAY_<SECTION>__<KEY> "
             "variable) its coins, plans, datacenters and account currencies are left "
             "open, with one they are the configured ones",
        example=["gateway openapi > openapi.json",
                 "gateway openapi -c /etc/gateway/gateway.toml > openapi.json"])
