"""Sigma rules over the case's events: our packaged rules (``detect/rules``) and the analyst's own
SigmaHQ-format rules (``--rules DIR``), one SQL statement per rule, one finding per rule and host.

A rule is converted once, when it is loaded, by pySigma's SQLite backend with a processing
pipeline that maps Sigma field names onto event columns (``Scope.fields``), and a few templates
changed where DuckDB reads SQLite's SQL differently (``DuckDBBackend``):

=========================  =========================================  ===============================
construct                  SQLite backend emits                       run here as
=========================  =========================================  ===============================
string equality            ``f='v'`` (case-sensitive in DuckDB)       ``f ILIKE 'v'``
wildcards, contains        ``f LIKE '%v%' ESCAPE '\\'`` (SQLite LIKE  ``f ILIKE '%v%'`` (no ESCAPE:
                           ignores ASCII case, DuckDB LIKE does not)  DuckDB's ESCAPE path is ~10x
                                                                      slower); ``f LIKE`` when the
                                                                      value has no letters
value holding % _ or \\    ``f LIKE 'a\\_b%' ESCAPE '\\'``             ``contains``/``starts_with``/
                                                                      ``ends_with``/``=`` on
                                                                      ``lower(f)``, else
                                                                      ``lower(f) LIKE … ESCAPE``
regular expression         ``f REGEXP 're'`` (no such operator)       ``regexp_matches(f, 're')``
NOT over a missing field   ``NOT COALESCE(x, 0)``                     ``NOT COALESCE(x, false)``
boolean                    ``(f='true' OR f=1)`` (DuckDB casts 'abc'  ``CAST(f AS VARCHAR) IN
                           to a number and fails)                     ('true', '1')``
timestamp part             ``strftime('%H', f)``                      ``strftime(f, '%H')``
identifiers                `` `f` `` (SQLite backticks)               ``"f"``
string op on a number      ``http_status LIKE '4%'`` (no implicit     ``CAST(http_status AS VARCHAR)
column                     cast in DuckDB)                            LIKE '4%'``
number on a text column    ``user_name=0``                            ``user_name ILIKE '0'``
number compared, text col  ``f > 5``                                  ``TRY_CAST(f AS DOUBLE) > 5``
=========================  =========================================  ===============================

|cased matches stay SQLite's ``GLOB`` (DuckDB's GLOB reads ``[*]`` classes the same way), and
keyword (field-less) searches match the whole record text (``raw``). Regular expressions run in
RE2 in DuckDB, and pySigma already rejects a rule whose expression RE2 cannot compile
(look-around, back-references) as invalid.

Besides event columns, rules may name ``url_decoded`` (the request target with ``%XX`` and ``+``
decoded; the raw text when it does not decode to UTF-8) and ``extra.<key>`` (a field the format
captured beyond the canonical ones).

Copies of one record (live file, backup, salvaged block) count once: a finding's count, times and
event ids are those of distinct records (host, second, record key — as in the merged timeline),
the event ids naming the most trustworthy copy; ``detail.events`` counts every matching copy.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaConditionError, SigmaError, SigmaRuleLocation, SigmaTransformationError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldFunctionTransformation
from sigma.rule import SigmaRule
from sigma.types import SigmaCasedString, SigmaRegularExpression, SigmaString, SpecialChars

from logsalvage.detect.model import Finding
from logsalvage.errors import ConfigError
from logsalvage.model import CANONICAL_FIELDS, SYSTEM_LOG_SQL

RULES_DIR = Path(__file__).resolve().parent / "rules"

LEVELS = {"informational": "info", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
DEFAULT_SEVERITY = "medium"  # a rule without a level
EXAMPLES = 3  # raw records kept in a finding's detail

# event columns a rule may name directly, with their DuckDB types
COLUMNS: dict[str, str] = {
    "event_id": "VARCHAR", "source_id": "VARCHAR", "host": "VARCHAR", "kind": "VARCHAR",
    "format_id": "VARCHAR", "event_type": "VARCHAR", "ts_raw": "VARCHAR", "recovered": "BOOLEAN",
    "line_no": "BIGINT", "raw": "VARCHAR", "message": "VARCHAR", "extra": "VARCHAR",
    **CANONICAL_FIELDS,
    "url_decoded": "VARCHAR",
}
NUMERIC = frozenset(c for c, t in COLUMNS.items() if t in ("BIGINT", "INTEGER", "DOUBLE"))
FULLTEXT = "raw"
URL_DECODED_SQL = """coalesce(try(url_decode(replace("url_full", '+', ' '))), "url_full")"""

# -- log sources -------------------------------------------------------------------------------
WEB_FIELDS = {
    "c-uri": "url_full", "cs-uri": "url_full", "uri": "url_full", "url": "url_full", "request": "url_full",
    "cs-uri-stem": "url_path", "c-uri-stem": "url_path", "c-uri-path": "url_path", "uri_path": "url_path",
    "cs-uri-query": "url_query", "c-uri-query": "url_query", "uri_query": "url_query",
    "cs-method": "http_method", "method": "http_method",
    "sc-status": "http_status", "status": "http_status", "response": "http_status",
    "c-ip": "source_ip", "src_ip": "source_ip", "client_ip": "source_ip", "clientip": "source_ip",
    "cs-user-agent": "user_agent", "c-useragent": "user_agent", "useragent": "user_agent",
    "cs-referer": "referrer", "cs-referrer": "referrer", "referer": "referrer",
    "cs-username": "user_name", "cs-host": "vhost", "sc-bytes": "bytes", "cs-version": "http_version",
}
WEB_ERROR_FIELDS = {"c-ip": "source_ip", "src_ip": "source_ip", "client_ip": "source_ip",
                    "level": "log_level", "msg": "message"}
LINUX_FIELDS = {
    "user": "user_name", "username": "user_name", "pam_user": "user_name", "targetuser": "target_user",
    "pam_rhost": "source_ip", "rhost": "source_ip", "src_ip": "source_ip", "sourceip": "source_ip",
    "ip": "source_ip", "pid": "process_pid", "processid": "process_pid", "process": "program",
    "processname": "program", "appname": "program", "commandline": "command", "cmd": "command",
    "msg": "message", "pam_message": "message", "hostname": "log_host",
}
SUDO_FIELDS = {**LINUX_FIELDS, "user": "target_user", "command": "command", "pwd": "extra.cwd",
               "tty": "extra.tty"}
POSTGRES_FIELDS = {"user": "db_user", "username": "db_user", "database": "db_name", "query": "statement",
                   "src_ip": "source_ip", "client_ip": "source_ip", "level": "pg_level", "msg": "message"}
# programs whose messages go to the auth/authpriv facility (/var/log/secure, auth.log), FTP daemons included
_AUTH_PROGRAMS = ("sshd|sshd-session|dropbear|su|sudo|login|passwd|useradd|userdel|usermod|groupadd|groupdel|"
                  "gpasswd|chpasswd|chage|pkexec|polkitd|unix_chkpwd|systemd-logind|gdm|gdm-password|"
                  "vsftpd|proftpd|pure-ftpd|ftpd|wu-ftpd|in\\.ftpd|gssftpd|xinetd")


@dataclass(frozen=True)
class Scope:
    """The events a Sigma log source stands for, and what its field names mean there."""

    name: str
    where: str  # SQL over events
    fields: Mapping[str, str] = field(default_factory=dict)  # lower-case Sigma field -> column
    # evaluate the rule only on rows inside the scope: DuckDB orders a filter's conjuncts by its
    # own cost guess and would run a rule's text searches over every syslog record before a
    # scope it cannot push into the scan (16 s instead of 0.7 s for the auth scope of 2.9 M)
    guard: bool = False

    def column(self, name: str) -> str | None:
        low = name.lower()
        if low in self.fields:
            return self.fields[low]
        if low in COLUMNS:
            return low
        if low.startswith("extra.") and len(name) > 6:
            return "extra." + name[6:]
        return None


WEB = Scope("webserver access log", "format_id = 'apache-access'", WEB_FIELDS)
WEB_ERROR = Scope("apache error log", "format_id = 'apache-error'", WEB_ERROR_FIELDS)
_SYSLOGS = SYSTEM_LOG_SQL
SYSLOG = Scope("linux syslog", _SYSLOGS, LINUX_FIELDS)
AUTH = Scope("linux auth", f"""{_SYSLOGS} AND (event_type LIKE 'auth%' OR event_type LIKE 'iam.%'
             OR event_type LIKE 'ftp.%' OR regexp_matches(program, '^(?:{_AUTH_PROGRAMS})(?:\\(pam_unix\\))?$'))""",
             LINUX_FIELDS, guard=True)
SSHD = Scope("linux sshd", f"{_SYSLOGS} AND regexp_matches(program, '^(?:sshd|sshd-session)(?:\\(pam_unix\\))?$')",
             LINUX_FIELDS, guard=True)
SUDO = Scope("linux sudo", f"{_SYSLOGS} AND program = 'sudo'", SUDO_FIELDS, guard=True)
CRON = Scope("linux cron", f"{_SYSLOGS} AND event_type LIKE 'cron%'", LINUX_FIELDS, guard=True)
VSFTPD = Scope("vsftpd", f"format_id = 'vsftpd' OR ({_SYSLOGS} AND program = 'vsftpd')", LINUX_FIELDS, guard=True)
POSTGRES = Scope("postgresql", f"""format_id IN ('postgresql-stderr', 'postgresql-csvlog', 'postgresql-jsonlog')
                 OR ({_SYSLOGS} AND event_type LIKE 'postgresql%')""", POSTGRES_FIELDS, guard=True)

_LINUX_SERVICES = {None: SYSLOG, "syslog": SYSLOG, "auth": AUTH, "sshd": SSHD, "sudo": SUDO, "cron": CRON,
                   "vsftpd": VSFTPD}


def scope_for(category: str | None, product: str | None, service: str | None) -> Scope | None:
    """The events a rule's ``logsource`` reads, or None when the case holds no such log."""
    category, product, service = (v.lower() if isinstance(v, str) else None for v in (category, product, service))
    if category == "webserver":
        return WEB if product in (None, "apache", "nginx", "linux") and service in (None, "access", "apache", "nginx") \
            else None
    if category is not None and category != "database":
        return None  # process_creation, file_event, network_connection, proxy, …: not in these logs
    if product in ("apache", "nginx", None) and service in ("access", "access_log"):
        return WEB
    if product in ("apache", None) and service in ("apache", "error", "error_log"):
        return WEB_ERROR
    if product == "linux" and category is None:
        return _LINUX_SERVICES.get(service)
    if product in ("postgresql", "postgres") or service in ("postgresql", "postgres"):
        return POSTGRES
    return None


# -- conversion --------------------------------------------------------------------------------
class DuckDBBackend(sqliteBackend):
    """pySigma's SQLite backend with the templates DuckDB reads differently (module docstring)."""

    wildcard_match_expression = "{field} ILIKE '{value}' ESCAPE '\\'"
    contains_expression = "{field} ILIKE '%{value}%' ESCAPE '\\'"
    re_expression = "regexp_matches({field}, '{regex}')"
    null_safe_expression = "COALESCE({expr}, false)"
    field_timestamp_part_expression = "CAST(strftime({field}, '{timestamp_part}') AS INTEGER)"

    def __init__(self, processing_pipeline=None, **options):
        super().__init__(processing_pipeline, collect_errors=False, fulltext_field=FULLTEXT, **options)

    def escape_and_quote_field(self, field_name: str) -> str:
        if field_name.startswith("extra."):
            key = field_name[6:].replace('"', '\\"').replace("'", "''")
            return f"""json_extract_string("extra", '$."{key}"')"""
        return '"' + field_name.replace('"', '""') + '"'

    def _text(self, field_name: str) -> str:
        quoted = self.escape_and_quote_field(field_name)
        return f"CAST({quoted} AS VARCHAR)" if field_name in NUMERIC else quoted

    def convert_condition_field_eq_val_str(self, cond, state):
        value: SigmaString = cond.value
        if cond.field in NUMERIC and not value.contains_special() and re.fullmatch(r"-?\d+(?:\.\d+)?", str(value)):
            return f"{self.escape_and_quote_field(cond.field)} = {value}"
        return self._match(self._text(cond.field), value.s)

    def convert_condition_val_str(self, cond, state):
        if isinstance(cond.value, SigmaCasedString):
            return super().convert_condition_val_str(cond, state)
        return self._match(self._fulltext_column(), (SpecialChars.WILDCARD_MULTI, *cond.value.s,
                                                     SpecialChars.WILDCARD_MULTI))

    def convert_condition_val_num(self, cond, state):
        return self._match(self._fulltext_column(), (SpecialChars.WILDCARD_MULTI, str(cond.value),
                                                     SpecialChars.WILDCARD_MULTI))

    @staticmethod
    def _match(field_sql: str, parts: tuple) -> str:
        """Case-insensitive match of a Sigma string (text and wildcards) in the fastest form DuckDB
        has for it. ILIKE with an ESCAPE clause is ten times slower than without one, and ILIKE
        three times slower than LIKE over long text, so: a pattern without letters is matched
        case-sensitively (it has no case); one needing no escape is a plain (I)LIKE; a literal
        holding '%', '_' or a backslash is a contains/starts_with/ends_with/equality (on lower()
        if it has letters); anything else is (lower() )LIKE ... ESCAPE."""
        merged: list = []
        for p in parts:
            if p == "" or (p is SpecialChars.WILDCARD_MULTI and merged and merged[-1] is SpecialChars.WILDCARD_MULTI):
                continue  # a run of '*' is one '*'
            merged.append(p)
        texts = [p for p in merged if isinstance(p, str)]
        cased = any(ch.isalpha() for t in texts for ch in t)
        if not any(c in t for t in texts for c in "%_\\"):
            pattern = "".join(p if isinstance(p, str) else ("%" if p is SpecialChars.WILDCARD_MULTI else "_")
                              for p in merged).replace("'", "''")
            return f"{field_sql} {'ILIKE' if cased else 'LIKE'} '{pattern}'"
        subject = f"lower({field_sql})" if cased else field_sql
        lead = bool(merged) and merged[0] is SpecialChars.WILDCARD_MULTI
        trail = len(merged) > 1 and merged[-1] is SpecialChars.WILDCARD_MULTI
        inner = merged[int(lead):len(merged) - int(trail)]
        if len(inner) == 1 and isinstance(inner[0], str):
            literal = inner[0].lower().replace("'", "''")
            function = {(True, True): "contains", (False, True): "starts_with", (True, False): "ends_with"}.get((lead, trail))
            return f"{function}({subject}, '{literal}')" if function else f"{subject} = '{literal}'"
        pattern = "".join(re.sub(r"([%_\\])", r"\\\1", p.lower()) if isinstance(p, str)
                          else ("%" if p is SpecialChars.WILDCARD_MULTI else "_") for p in merged).replace("'", "''")
        return f"{subject} LIKE '{pattern}' ESCAPE '\\'"

    def convert_condition_field_eq_val_str_case_sensitive(self, cond, state):
        return self.case_sensitive_match_expression.format(
            field=self._text(cond.field), value=self.convert_value_str(cond.value, state, glob_wildcards=True))

    def convert_condition_field_eq_val_num(self, cond, state):
        if cond.field in NUMERIC:
            return f"{self.escape_and_quote_field(cond.field)} = {cond.value}"
        return f"{self._text(cond.field)} ILIKE '{cond.value}'"

    def convert_condition_field_eq_val_re(self, cond, state):
        return self.re_expression.format(field=self._text(cond.field), regex=self.convert_value_re(cond.value, state),
                                         **self.get_flag_template(cond.value))

    def convert_condition_field_eq_val_bool(self, cond, state):
        value = "'true', '1'" if cond.value.boolean else "'false', '0'"
        return f"CAST({self.escape_and_quote_field(cond.field)} AS VARCHAR) IN ({value})"

    def convert_condition_field_compare_op_val(self, cond, state):
        query = super().convert_condition_field_compare_op_val(cond, state)
        if cond.field not in NUMERIC:  # a number compared with text: the text as a number, when it is one
            quoted = self.escape_and_quote_field(cond.field)
            query = query.replace(quoted, f"TRY_CAST({quoted} AS DOUBLE)", 1)
        return query

    def finalize_query_default(self, rule, query, index, state):
        return query  # the condition alone: detect() adds the scope and the aggregation


class _ColumnMapping(FieldFunctionTransformation):
    """Sigma field names to event columns; a field with no column fails the rule's conversion."""

    def apply(self, rule) -> None:
        rule.fields = []  # the rule's list of fields to display names no conditions
        super().apply(rule)


def _pipeline(scope: Scope) -> ProcessingPipeline:
    def column(name: str | None) -> str | None:
        if name is None:
            return None
        mapped = scope.column(name)
        if mapped is None:
            raise SigmaTransformationError(f"field '{name}' has no counterpart in the {scope.name} events")
        return mapped

    return ProcessingPipeline(name=f"logsalvage {scope.name}", priority=20, items=[
        ProcessingItem(identifier="logsalvage_columns", transformation=_ColumnMapping(mapping={}, transform_func=column))])


# -- loading -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedRule:
    """A rule ready to run: its identity, its scope and its condition as DuckDB SQL."""

    rule_id: str  # sigma.<name, id or file slug>
    title: str
    severity: str
    path: str
    scope: Scope
    condition: str
    regexes: tuple[str, ...]
    sigma_id: str | None = None
    level: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    logsource: dict = field(default_factory=dict)
    falsepositives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    path: str
    title: str
    reason: str


class RuleSet(list):
    """Loaded rules (a list of LoadedRule) and the rules left out, with why."""

    def __init__(self, rules=(), skipped=()):
        super().__init__(rules)
        self.skipped: list[Skipped] = list(skipped)

    def skipped_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.skipped:
            kind = s.reason.split(":", 1)[0]
            out[kind] = out.get(kind, 0) + 1
        return out


def _rule_files(directory: Path) -> list[Path]:
    if directory.is_file():
        return [directory]
    if not directory.is_dir():
        raise ConfigError("no such rules directory", where=str(directory))
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def _parse_file(path: Path) -> SigmaCollection:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read Sigma rule: {exc}", where=str(path)) from None
    try:
        return SigmaCollection.from_yaml(text, source=SigmaRuleLocation(path), collect_errors=False)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", where=where) from None
    except SigmaError as exc:
        raise ConfigError(f"not a valid Sigma rule: {_sigma_message(exc)}", where=str(path)) from None
    except (AttributeError, TypeError, KeyError) as exc:  # pySigma's answer to a document that is no mapping
        raise ConfigError(f"not a valid Sigma rule: {type(exc).__name__}: {exc}", where=str(path)) from None


def _condition_problem(rule: SigmaRule, path: Path) -> str | None:
    """Parse the rule's conditions now (pySigma parses them lazily): a broken one makes the file
    invalid; Sigma 1's aggregation pipe ('| count() > 3') is a rule we cannot run, not an error."""
    try:
        for condition in rule.detection.parsed_condition:
            condition.parsed  # noqa: B018 -- parsed on first access
    except SigmaConditionError as exc:
        if "pipe syntax" in str(exc):
            return "unsupported: Sigma 1 aggregation ('| count() ...'), replaced by correlation rules"
        raise ConfigError(f"not a valid Sigma rule: {_sigma_message(exc)}", where=str(path)) from None
    except (SigmaError, TypeError, AttributeError) as exc:
        raise ConfigError(f"not a valid Sigma rule: condition: {exc}", where=str(path)) from None
    return None


def _sigma_message(exc: SigmaError) -> str:
    return str(exc).split(" in file ", 1)[0]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "rule"


def _regexes(rule: SigmaRule) -> tuple[str, ...]:
    out = []

    def walk(cond):
        if isinstance(cond, ConditionFieldEqualsValueExpression) or hasattr(cond, "value"):
            value = getattr(cond, "value", None)
            if isinstance(value, SigmaRegularExpression):
                out.append(value.escape((), "", False, True))
        for arg in getattr(cond, "args", ()) or ():
            walk(arg)

    for parsed in rule.detection.parsed_condition:
        walk(parsed.parsed)
    return tuple(out)


def _display(path: Path) -> str:
    try:
        return f"logsalvage:detect/rules/{path.relative_to(RULES_DIR).as_posix()}"
    except ValueError:
        return str(path)


def load_rules(directories: Iterable[Path]) -> RuleSet:
    """Every Sigma rule under ``directories`` (files or directories, searched recursively for
    ``*.yml``/``*.yaml``), converted for the case database.

    A file that is not valid YAML or not a valid Sigma rule raises ConfigError naming it. Rules the
    case cannot answer are skipped and counted (``RuleSet.skipped``): a log source with no events
    here, a field with no column, a feature the conversion lacks, correlation rules, and a second
    rule with an id already loaded.
    """
    backends: dict[str, DuckDBBackend] = {}
    loaded, skipped, seen = [], [], {}
    for directory in directories:
        for path in _rule_files(Path(directory)):
            shown = _display(path)
            for rule in _parse_file(path):
                title = getattr(rule, "title", "") or path.stem
                if isinstance(rule, SigmaCorrelationRule):
                    skipped.append(Skipped(shown, title, "unsupported: correlation rules are not run"))
                    continue
                if not isinstance(rule, SigmaRule):
                    skipped.append(Skipped(shown, title, f"unsupported: {type(rule).__name__}"))
                    continue
                problem = _condition_problem(rule, path)
                if problem:
                    skipped.append(Skipped(shown, title, problem))
                    continue
                ls = rule.logsource
                scope = scope_for(ls.category, ls.product, ls.service)
                if scope is None:
                    what = "/".join(f"{k}={v}" for k, v in (("category", ls.category), ("product", ls.product),
                                                            ("service", ls.service)) if v)
                    skipped.append(Skipped(shown, title, f"logsource: no events for {what or 'an empty logsource'}"))
                    continue
                rule_id = "sigma." + (rule.name or (str(rule.id) if rule.id else _slug(rule.title or path.stem)))
                if rule_id in seen:
                    skipped.append(Skipped(shown, title, f"duplicate: {rule_id} already loaded from {seen[rule_id]}"))
                    continue
                backend = backends.get(scope.name)
                if backend is None:
                    backend = backends[scope.name] = DuckDBBackend(_pipeline(scope))
                try:
                    queries = backend.convert_rule(rule)
                except SigmaError as exc:
                    skipped.append(Skipped(shown, title, f"conversion: {_sigma_message(exc)}"))
                    continue
                except NotImplementedError as exc:
                    skipped.append(Skipped(shown, title, f"conversion: {exc}"))
                    continue
                if not queries:  # a rule only a correlation refers to is not run on its own (Sigma 2)
                    skipped.append(Skipped(shown, title, "unsupported: used only by a correlation rule"))
                    continue
                seen[rule_id] = shown
                level = rule.level.name.lower() if rule.level else None
                condition = " OR ".join(f"({q})" for q in queries) if len(queries) > 1 else queries[0]
                loaded.append(LoadedRule(
                    rule_id=rule_id, title=title, severity=LEVELS.get(level, DEFAULT_SEVERITY), path=shown,
                    scope=scope, condition=condition, regexes=_regexes(rule),
                    sigma_id=str(rule.id) if rule.id else None, level=level, description=rule.description,
                    tags=tuple(str(t) for t in rule.tags),
                    logsource={k: v for k, v in (("category", ls.category), ("product", ls.product),
                                                 ("service", ls.service)) if v},
                    falsepositives=tuple(rule.falsepositives or ())))
    return RuleSet(loaded, skipped)


# -- running -----------------------------------------------------------------------------------
_KIND_RANK = "CASE kind WHEN 'live' THEN 0 WHEN 'backup' THEN 1 ELSE 2 END"


def rule_sql(rule: LoadedRule) -> str:
    """The one statement a rule runs: matching events, copies of a record folded, per host."""
    # the decoded URL once per row, not once per mention (DuckDB does not fold repeated calls)
    decoded = f", {URL_DECODED_SQL} AS url_decoded" if '"url_decoded"' in rule.condition else ""
    source = f"(SELECT *{decoded} FROM events WHERE {rule.scope.where}) e"
    condition = f"CASE WHEN {rule.scope.where} THEN ({rule.condition}) ELSE false END" if rule.scope.guard \
        else rule.condition
    return f"""
WITH matched AS (
  SELECT event_id, host, kind, source_id, "offset", ts_utc, source_ip, raw, record_key,
         row_number() OVER (PARTITION BY host, CASE WHEN ts_utc IS NULL THEN event_id END,
                                         epoch(ts_utc)::BIGINT, record_key
                            ORDER BY {_KIND_RANK}, source_id, "offset") AS copy_no
  FROM {source}
  WHERE {condition})
SELECT host,
       count(*) FILTER (WHERE copy_no = 1) AS records,
       count(*) AS events,
       min(ts_utc) AS first_seen,
       max(ts_utc) AS last_seen,
       list_sort(list(DISTINCT source_ip) FILTER (WHERE source_ip IS NOT NULL AND source_ip <> '-')) AS sources,
       list(event_id ORDER BY ts_utc NULLS LAST, source_id, "offset") FILTER (WHERE copy_no = 1) AS event_ids,
       min_by(raw, {{'t': ts_utc, 's': source_id, 'o': "offset"}}, {EXAMPLES}) FILTER (WHERE copy_no = 1) AS examples,
       count(*) FILTER (WHERE copy_no = 1 AND ts_utc IS NULL) AS undated
FROM matched GROUP BY host ORDER BY host"""


@dataclass
class SigmaRun:
    """What a Sigma pass did: its findings, the rules run and left out, hits and time per rule."""

    findings: list[Finding]
    rules: RuleSet
    failed: list[Skipped] = field(default_factory=list)  # rules whose query could not run here
    hits: dict[str, int] = field(default_factory=dict)  # rule id -> records matched (all hosts)
    seconds: dict[str, float] = field(default_factory=dict)  # rule id -> query time
    total_seconds: float = 0.0

    def as_dict(self) -> dict:
        """What goes into findings.json: no query times, so two runs over the same case write the
        same file (``total_seconds`` and ``seconds`` stay on the object for benchmarks)."""
        return {"rules_loaded": len(self.rules), "rules_skipped": self.rules.skipped_counts(),
                "skipped": [vars(s) for s in self.rules.skipped + self.failed],
                "hits": self.hits}


def run(ctx, rule_dirs: Iterable[Path] = (), *, packaged: bool = True) -> SigmaRun:
    """Load the packaged rules (unless ``packaged`` is false) and those under ``rule_dirs``, and run
    every rule over the case's events."""
    start = time.perf_counter()
    rules = load_rules(([RULES_DIR] if packaged else []) + [Path(d) for d in rule_dirs])
    result = SigmaRun(findings=[], rules=rules)
    for rule in rules:
        bad = next((e for e in (ctx.store.regex_error(r) for r in rule.regexes) if e), None)
        if bad:
            result.failed.append(Skipped(rule.path, rule.title, f"regex: {bad}"))
            continue
        t0 = time.perf_counter()
        try:
            rows = ctx.query(rule_sql(rule))
        except Exception as exc:  # noqa: BLE001 -- duckdb's errors (store owns duckdb): reported, not raised
            result.failed.append(Skipped(rule.path, rule.title, f"query: {str(exc).splitlines()[0]}"))
            continue
        finally:
            result.seconds[rule.rule_id] = round(time.perf_counter() - t0, 3)
        result.hits[rule.rule_id] = sum(r[1] for r in rows)
        for host, records, events, first, last, sources, event_ids, examples, undated in rows:
            if first is None:  # every match undated: no time to place it at
                result.failed.append(Skipped(rule.path, rule.title,
                                             f"undated: {records} matching records on {host} have no time"))
                continue
            result.findings.append(Finding(
                rule=rule.rule_id, title=rule.title, severity=rule.severity, host=host,
                first_seen=first, last_seen=last, count=records, sources=tuple(sources or ()),
                event_ids=tuple(event_ids or ()),
                detail={"source": "sigma", "sigma_id": rule.sigma_id, "level": rule.level, "file": rule.path,
                        "description": rule.description, "logsource": rule.logsource, "tags": list(rule.tags),
                        "falsepositives": list(rule.falsepositives), "events": events,
                        "undated_records": undated, "examples": list(examples or ())}))
    result.total_seconds = time.perf_counter() - start
    return result


def detect(ctx, rule_dirs: Iterable[Path] = ()) -> list[Finding]:
    """Findings of the packaged Sigma rules and of those under ``rule_dirs``: one per rule and host."""
    return run(ctx, rule_dirs).findings
