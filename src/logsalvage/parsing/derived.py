"""Fields computed from a captured field, declared by a format (``derive:`` in its YAML).

Some headers pack several facts into one token: syslog's ``<PRI>`` is facility × 8 + severity
(RFC 5424 §6.2.1, the same in RFC 3164 §4.1.1). A format names the derivations it wants; each one
is written twice, once per engine — ``apply`` on a record dict for the per-line reference engine,
``sql`` as column expressions for the columnar engine — and the differential tests hold the two
equal. A derivation only adds fields: it never overwrites a field a pattern captured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from logsalvage.parsing import columnar_sql as q

# RFC 5424 table 1, with the names rsyslog and syslog(3) give the codes (13-15 have no common name
# in syslog(3): rsyslog calls them security, console and solaris-cron)
FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
              "ftp", "ntp", "security", "console", "solaris-cron",
              "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7")
# RFC 5424 table 2, syslog(3)'s names
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
MAX_PRI = len(FACILITIES) * 8 - 1  # 191


@dataclass(frozen=True)
class Derivation:
    source: str  # the captured field it reads
    outputs: tuple[str, ...]  # the fields it may add
    apply: Callable[[dict], None]  # the reference engine's: adds the fields to a record
    sql: Callable[[str, dict[str, str]], dict[str, str]]  # (source expr, current exprs) -> new exprs


def _pri_value(text) -> int | None:
    """The PRI's number when it is one RFC 5424 allows (1-3 ASCII digits, no leading zero but "0"
    itself, at most 191)."""
    if text is None:
        return None
    s = str(text)
    if not (1 <= len(s) <= 3 and s.isascii() and s.isdigit()) or (len(s) > 1 and s[0] == "0"):
        return None
    n = int(s)
    return n if n <= MAX_PRI else None


def _pri_apply(rec: dict) -> None:
    n = _pri_value(rec.get("pri"))
    if n is None:
        return
    rec.setdefault("facility", FACILITIES[n // 8])
    rec.setdefault("severity", SEVERITIES[n % 8])
    if rec.get("log_level") is None:
        rec["log_level"] = SEVERITIES[n % 8]


def _pri_sql(pri: str, current: dict[str, str]) -> dict[str, str]:
    ok = f"regexp_full_match({pri}, '0|[1-9][0-9]{{0,2}}') AND TRY_CAST({pri} AS INTEGER) <= {MAX_PRI}"
    n = f"TRY_CAST({pri} AS INTEGER)"
    fac = f"CASE WHEN {ok} THEN {q.lit_list(FACILITIES)}[{n} // 8 + 1] END"
    sev = f"CASE WHEN {ok} THEN {q.lit_list(SEVERITIES)}[{n} % 8 + 1] END"
    return {"facility": f"COALESCE({current.get('facility', 'NULL')}, {fac})",
            "severity": f"COALESCE({current.get('severity', 'NULL')}, {sev})",
            "log_level": f"COALESCE({current.get('log_level', 'NULL')}, {sev})"}


DERIVATIONS = {
    "syslog-priority": Derivation("pri", ("facility", "severity", "log_level"), _pri_apply, _pri_sql),
}
