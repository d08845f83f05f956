"""SQL text for the columnar engine: format patterns as RE2 masks and extractions in DuckDB.

Pure string building, no connection: each function returns an expression or a SELECT list that
``parsing.columnar`` runs over a table of lines or records. The semantics are those of the
reference engine (``parsing.engine``), spelled as set operations:

* *first match wins*: one ``CASE`` of ``regexp_matches`` in pattern order gives each row the index
  of its pattern; one ``regexp_extract`` with that pattern then takes its named groups;
* a field a pattern captures never overwrites one already set (``COALESCE(old, new)``), '-' and
  '' are no value, canonical numbers are cast, ``set:`` values overwrite;
* timestamps are cut into (year, month, day, microseconds of the day, UTC offset) as
  ``parsing.timestamps`` does, with the same validity rules.
"""

from __future__ import annotations

import re

from logsalvage.model import CANONICAL_FIELDS, FLOAT_FIELDS, INT_FIELDS
from logsalvage.parsing.dialect import to_python
from logsalvage.parsing.timestamps import MONTHS, TZ_ABBREVIATIONS

_MONTH_LIST = "[" + ", ".join(f"'{m}'" for m in MONTHS) + "]"
_DAYS = "[31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]"


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def lit_list(items) -> str:
    """A SQL list literal of strings."""
    return "[" + ", ".join(lit(str(i)) for i in items) + "]"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def convert(name: str, value: str) -> str:
    """``engine._convert`` of one captured value (already NULL for no value)."""
    if name == "outcome":
        return (f"CASE {value} WHEN 'OK' THEN 'success' WHEN 'FAIL' THEN 'failure' "
                f"WHEN 'FAILED' THEN 'failure' ELSE {value} END")
    if name in INT_FIELDS:
        return f"TRY_CAST({value} AS {CANONICAL_FIELDS[name]})"
    if name in FLOAT_FIELDS:
        return f"TRY_CAST({value} AS DOUBLE)"
    return value


def column_type(name: str) -> str:
    return CANONICAL_FIELDS.get(name, "VARCHAR")


def no_value(expr: str) -> str:
    """'-' and '' are no value (engine._NULLS)."""
    return f"CASE WHEN {expr} IN ('-', '') THEN NULL ELSE {expr} END"


def first_match(target: str, sources: list[str], anchored: bool) -> str:
    """Index (1-based) of the first pattern matching ``target``, 0 when none, NULL when target is."""
    whens = " ".join(f"WHEN regexp_matches({target}, {lit(('^(?:' + s + ')') if anchored else s)}) THEN {i + 1}"
                     for i, s in enumerate(sources))
    return f"CASE WHEN {target} IS NULL THEN NULL {whens} ELSE 0 END"


def group_names(source: str) -> list[str]:
    """Names of a pattern's capture groups in group order (``_N`` for an unnamed one): DuckDB maps
    a name list onto the groups by position."""
    rx = re.compile(to_python(source), re.ASCII)
    names = {i: n for n, i in rx.groupindex.items()}
    return [names.get(i, f"_{i}") for i in range(1, rx.groups + 1)]


def extract(target: str, source: str, anchored: bool) -> str:
    """A struct of the named groups of ``source`` matched against ``target`` ('' for a group that
    took no part; NULL struct fields never occur)."""
    rx = ("^(?:" + source + ")") if anchored else source
    names = group_names(source)
    if not names:
        return "NULL"
    return f"regexp_extract({target}, {lit(rx)}, [{', '.join(lit(n) for n in names)}])"


def _offset(text: str) -> str:
    """``timestamps._offset``: '+0900', '+09:00', '-05', 'Z', an abbreviation → seconds; else NULL."""
    digits = f"replace(substr({text}, 2), ':', '')"
    abbrev = " ".join(f"WHEN {lit(k)} THEN {v}" for k, v in TZ_ABBREVIATIONS.items() if v is not None)
    return (f"CASE WHEN {text} IS NULL OR {text} = '' THEN NULL "
            f"WHEN substr({text}, 1, 1) IN ('+', '-') THEN "
            f"  CASE WHEN regexp_full_match({digits}, '[0-9]{{2}}|[0-9]{{4}}') THEN "
            f"    (CASE WHEN substr({text}, 1, 1) = '-' THEN -1 ELSE 1 END) * "
            f"    (CAST(substr({digits}, 1, 2) AS INTEGER) * 3600 + COALESCE(TRY_CAST(substr({digits}, 3, 2) AS INTEGER), 0) * 60) "
            f"  END "
            f"ELSE CASE upper({text}) {abbrev} ELSE NULL END END")


# each timestamp format: (RE2 pattern with named groups, year, month expressions over its groups g, zone group)
_STAMPS = {
    "syslog": (r"^(?:(?P<y1>\d{4}) )?(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<d>\d{1,2}) (?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)"
               r"(?:\.(?P<f>\d{1,6}))?(?: (?P<y2>\d{4}))?$",
               "COALESCE(nullif({g}.y1, ''), nullif({g}.y2, ''))", "list_position(" + _MONTH_LIST + ", {g}.mon)", None),
    "iso": (r"^(?P<y1>\d{4})-(?P<mon>\d\d)-(?P<d>\d\d)(?:T| {1,2})(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)(?:[.,](?P<f>\d{1,9}))?"
            r"(?: ?(?P<z>Z|[+-]\d\d(?::?\d\d)?|[A-Za-z]{1,5}))?$",
            "{g}.y1", "TRY_CAST({g}.mon AS INTEGER)", "{g}.z"),
    "slash": (r"^(?P<y1>\d{4})/(?P<mon>\d\d)/(?P<d>\d\d) (?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)$",
              "{g}.y1", "TRY_CAST({g}.mon AS INTEGER)", None),
    "apache": (r"^(?P<d>\d{1,2})/(?P<mon>[A-Z][a-z]{2})/(?P<y1>\d{4}):(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)"
               r"(?:\.(?P<f>\d{1,6}))?(?: (?P<z>[+-]\d{4}))? ?$",
               "{g}.y1", "list_position(" + _MONTH_LIST + ", {g}.mon)", "{g}.z"),
    "ctime": (r"^(?:[A-Z][a-z]{2} )?(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<d>\d{1,2}) (?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)"
              r"(?:\.(?P<f>\d{1,6}))? (?P<y1>\d{4})$",
              "{g}.y1", "list_position(" + _MONTH_LIST + ", {g}.mon)", None),
    "mysql": (r"^(?P<y1>\d\d)(?P<mon>\d\d)(?P<d>\d\d) {1,2}(?P<h>\d{1,2}):(?P<mi>\d\d):(?P<s>\d\d)$",
              "CAST({g}.y1 AS INTEGER) + CASE WHEN CAST({g}.y1 AS INTEGER) >= 69 THEN 1900 ELSE 2000 END",
              "TRY_CAST({g}.mon AS INTEGER)", None),
    "mariadb": (r"^(?P<y1>\d{4})-(?P<mon>\d\d)-(?P<d>\d\d) {1,2}(?P<h>\d{1,2}):(?P<mi>\d\d):(?P<s>\d\d)$",
                "{g}.y1", "TRY_CAST({g}.mon AS INTEGER)", None),
}
STAMP_FORMATS = frozenset(_STAMPS)
STAMP_COLUMNS = ("y", "mo", "d", "sod_us", "utc_offset_s")


def stamp_query(inner: str, raw: str, formats: tuple[str, ...]) -> str:
    """``inner`` with the parts of ``raw`` parsed by the first format that gives a valid time
    (``y``, ``mo``, ``d``, ``sod_us``, ``utc_offset_s``; all NULL when none does) and ``stamp_ok``."""
    extracts, oks, parts = [], [], {c: [] for c in STAMP_COLUMNS}
    for k, name in enumerate(formats):
        rx, year, month, zone = _STAMPS[name]
        g = f"_g{k}"
        names = group_names(rx)
        extracts.append(f"CASE WHEN regexp_matches({raw}, {lit(rx)}) THEN {extract(raw, rx, False)} END AS {g}")
        mo = month.format(g=g)
        d, h, mi, sec = (f"TRY_CAST({g}.{x} AS INTEGER)" for x in ("d", "h", "mi", "s"))
        oks.append(f"({g} IS NOT NULL AND COALESCE({mo} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND {_DAYS}[{mo}] "
                   f"AND {h} < 24 AND {mi} < 60 AND {sec} <= 60, false))")
        frac = f"COALESCE(TRY_CAST(substr(COALESCE({g}.f, '') || '000000', 1, 6) AS BIGINT), 0)" if "f" in names else "0"
        parts["y"].append(f"TRY_CAST({year.format(g=g)} AS INTEGER)")
        parts["mo"].append(mo)
        parts["d"].append(d)
        parts["sod_us"].append(f"((CAST({h} AS BIGINT) * 60 + {mi}) * 60 + {sec}) * 1000000 + {frac}")
        parts["utc_offset_s"].append(_offset(zone.format(g=g)) if zone else "CAST(NULL AS INTEGER)")
    cols = []
    for c in STAMP_COLUMNS:
        whens = " ".join(f"WHEN _ok{k} THEN {parts[c][k]}" for k in range(len(formats)))
        cast = "BIGINT" if c == "sod_us" else "INTEGER"
        cols.append(f"CAST(CASE {whens} END AS {cast}) AS {c}")
    ok_any = " OR ".join(f"_ok{k}" for k in range(len(formats))) or "false"
    gs = ", ".join(f"_g{k}" for k in range(len(formats)))
    ok_cols = ", ".join(f"{oks[k]} AS _ok{k}" for k in range(len(formats)))
    okx = ", ".join(f"_ok{k}" for k in range(len(formats)))
    return (f"SELECT * EXCLUDE ({gs}, {okx}), {', '.join(cols)}, ({ok_any}) AS stamp_ok FROM "
            f"(SELECT *, {ok_cols} FROM (SELECT *, {', '.join(extracts)} FROM ({inner})))")
