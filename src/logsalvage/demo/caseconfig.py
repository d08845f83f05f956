"""The demo's case config (``DIR/case.yaml``): what the responders know that the logs do not say.

The hosts and their roles, the application's database client, the maintenance company's
addresses, the web site's checksum inventory root, the time the server was stopped (containment),
and what the operator reported before it (the site was slow).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from . import actors
from .stamps import iso
from .timeline import ACQUIRED, SERVER_STOP, SITE_SLOW

TZ = "Asia/Tokyo"


def case_config() -> dict:
    return {
        "acquired": iso(ACQUIRED),
        "hosts": {
            "web01": {"timezone": TZ, "paths": ["web01/**"], "addresses": [actors.WEB01], "role": "web"},
            "db01": {"timezone": TZ, "paths": ["db01/**"], "addresses": [actors.DB01], "role": "database"},
        },
        "application": {"db_clients": [actors.WEB01], "db_users": ["webapp"],
                        "customer_tables": ["customers", "reservations"]},
        "inventory": {"docroot": "/var/www/html"},
        "detect": {"maintenance_addresses": [actors.MAINTENANCE, actors.SSH_ADMIN_HOST, actors.DBA_HOST]},
        "containment": iso(SERVER_STOP),
        "notes": [{"time": iso(SITE_SLOW), "host": "web01", "kind": "site_slow",
                   "text": "the operator reports the site is slow; a process 'p' uses 100 % CPU"}],
    }


def write_case_config(path: Path) -> None:
    text = ("# What the responders know besides the evidence; give it to ingest/detect with --config.\n"
            + yaml.safe_dump(case_config(), sort_keys=False, allow_unicode=True))
    path.write_text(text, encoding="utf-8")
