"""Alerts: one JSON object per line on stdout (nothing else goes there), to the local syslog
(``logging.handlers.SysLogHandler`` on /dev/log) and POSTed to a webhook. A syslog or webhook
failure is logged on stderr, never fatal: the alert is on stdout and in the case whatever happens."""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import TextIO

from logsalvage.textsafe import json_text

log = logging.getLogger("logsalvage.watch")

_LEVELS = {"info": logging.INFO, "low": logging.INFO, "medium": logging.WARNING, "high": logging.ERROR,
           "critical": logging.CRITICAL}


@dataclass(frozen=True)
class Alert:
    time: str  # ISO 8601 (UTC) of what the alert is about
    host: str | None
    rule: str
    severity: str
    title: str
    finding_id: str  # the finding's id; for milestones, heartbeat and file alerts an id of the same kind

    def as_dict(self) -> dict:
        return asdict(self)


def alert_id(prefix: str, *parts) -> str:
    key = json.dumps(parts, sort_keys=True, default=str)
    return f"{prefix}-" + hashlib.sha256(key.encode()).hexdigest()[:12]


class AlertSink:
    def __init__(self, out: TextIO | None = None, *, syslog: bool = False, facility: str = "local0",
                 syslog_address: str | tuple = "/dev/log", webhook: str | None = None, timeout: float = 5.0):
        self.out = out or sys.stdout
        self.webhook, self.timeout = webhook, timeout
        self.syslog = None
        if syslog:
            try:
                handler = logging.handlers.SysLogHandler(
                    address=syslog_address, facility=logging.handlers.SysLogHandler.facility_names[facility])
            except OSError as exc:
                log.warning("syslog unavailable (%s): alerts go to stdout and the webhook only", exc)
            else:
                handler.ident = "logsalvage-watch: "
                self.syslog = logging.getLogger("logsalvage.watch.syslog")
                self.syslog.propagate = False
                self.syslog.setLevel(logging.INFO)
                self.syslog.handlers = [handler]
        self.sent = 0

    def emit(self, alert: Alert) -> None:
        line = json_text(alert.as_dict(), ensure_ascii=False, sort_keys=True)
        self.out.write(line + "\n")
        self.out.flush()
        self.sent += 1
        if self.syslog is not None:
            self.syslog.log(_LEVELS.get(alert.severity, logging.WARNING), "%s", line)
        if self.webhook:
            self._post(line)

    def _post(self, line: str) -> None:
        req = urllib.request.Request(self.webhook, data=line.encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("webhook %s failed: %s", self.webhook, getattr(exc, "reason", exc))

    def close(self) -> None:
        if self.syslog is not None:
            for h in self.syslog.handlers:
                h.close()
