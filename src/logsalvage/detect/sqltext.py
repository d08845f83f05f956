"""SQL text as PostgreSQL itself reads it (pglast, i.e. libpg_query): statement fingerprints, what a
statement reads and how much of it, and whether a string carries SQL payload. Pure.

No keyword lists: a value "carries SQL" when, put where an application would have put it (after
``=`` as a number or a quoted string, inside zero to two parentheses), PostgreSQL's own grammar
reads more than one constant out of it — a second statement, a UNION or sub-select, an ORDER BY,
a comparison of two constants joined by AND/OR (the scanners' tautologies ``5617=5617``). A name
like ``O'Brien``, ``abc`` or ``Rock and Roll`` gives none of those and is not payload.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from pglast import parser

# Table names that hold customer data when the case config names none (application.customer_tables):
# compared with the relation's name, without schema, lower-cased; a name ending in '_' + one of these
# (wp_users, shop_customers) counts too.
CUSTOMER_TABLE_NAMES = (
    "customers", "customer", "users", "user", "members", "member", "accounts", "account", "clients", "client",
    "orders", "order", "reservations", "reservation", "bookings", "booking", "payments", "payment",
    "cards", "credit_cards", "invoices", "invoice", "addresses", "address", "contacts", "contact",
    "subscribers", "subscriber", "profiles", "profile", "passengers", "passenger", "patients", "patient",
    "persons", "person", "people", "employees", "employee", "guests", "guest",
)

# aggregates whose output is a number about the rows, not the rows (count(*) of a table leaks nothing)
_SUMMARY_AGGREGATES = frozenset({"count", "sum", "avg", "min", "max", "stddev", "variance", "bool_and",
                                 "bool_or", "every"})
# a LIMIT this large still returns (all of) a table
_LIMIT_STILL_FULL = 1000

_COMPARISONS = frozenset({"=", "<>", "!=", "<", ">", "<=", ">=", "~~", "!~~", "~~*", "!~~*"})


def fingerprint(sql: str | None) -> str | None:
    """libpg_query's fingerprint: equal for statements differing only in constants (and IN-list
    lengths); None when PostgreSQL would not parse the text."""
    if not sql:
        return None
    try:
        return parser.fingerprint(sql)
    except Exception:  # noqa: BLE001 - pglast raises ParseError, and ValueError on NUL bytes
        return None


def shape_sql(column: str) -> str:
    """A DuckDB expression grouping statement texts that can only differ in their constants: string
    literal contents emptied, numbers made 0. Texts whose quoting the regexes cannot follow exactly
    (backslashes, dollar quotes, comments, double-quoted names) are their own shape. Only a
    grouping key: fingerprints come from a real statement of each shape."""
    return (f"""CASE WHEN regexp_matches({column}, '[\\\\"]|\\$\\$|--|/\\*') THEN {column}
        ELSE regexp_replace(regexp_replace({column}, '''[^'']*''', '''''', 'g'),
                            '([^A-Za-z0-9_$])[0-9]+', '\\10', 'g') END""")


def _parse(sql: str) -> list[dict] | None:
    try:
        return json.loads(parser.parse_sql_json(sql)).get("stmts", [])
    except Exception:  # noqa: BLE001 - any parser failure means "not SQL PostgreSQL accepts"
        return None


def _walk(node, kind: str | None = None):
    """(node type, node body) of every node in a parse tree (JSON form)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and key[:1].isupper():
                yield key, value
            elif isinstance(value, dict) and key in ("larg", "rarg"):  # the arms of a UNION are SELECTs
                yield "SelectStmt", value
            yield from _walk(value, key if key[:1].isupper() else kind)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, kind)


def _name(func: dict) -> str:
    names = [n.get("String", {}).get("sval", "") for n in func.get("funcname", [])]
    return names[-1].lower() if names else ""


# --- what a statement does ---------------------------------------------------------------------

@dataclass(frozen=True)
class StatementInfo:
    fingerprint: str | None
    kind: str  # select, copy_to, copy_from, insert, update, delete, ddl, other, unparsable
    relations: tuple[str, ...] = ()  # every relation named (lower case, no schema)
    full_reads: tuple[str, ...] = ()  # read without WHERE (or LIMIT), returning rows
    grouped_reads: tuple[str, ...] = ()  # read without WHERE, returning GROUP BY values and aggregates
    copy_target: str | None = None  # COPY ... TO: stdout, file or program
    copy_file: str | None = None
    statements: int = 0


_KINDS = {"SelectStmt": "select", "InsertStmt": "insert", "UpdateStmt": "update", "DeleteStmt": "delete",
          "CreateStmt": "ddl", "AlterTableStmt": "ddl", "DropStmt": "ddl", "IndexStmt": "ddl",
          "CreateTableAsStmt": "ddl", "TruncateStmt": "ddl", "GrantStmt": "ddl", "CreateRoleStmt": "ddl",
          "AlterRoleStmt": "ddl", "CreateFunctionStmt": "ddl"}


@lru_cache(maxsize=65536)
def analyse(sql: str) -> StatementInfo:
    """Kind, relations, full reads and COPY target of a statement (the first one for the kind)."""
    stmts = _parse(sql)
    if not stmts:
        return StatementInfo(None, "unparsable")
    first_type = next(iter(stmts[0].get("stmt", {})), "")
    kind = _KINDS.get(first_type, "other")
    copy_target = copy_file = None
    ctes: set[str] = set()
    relations: list[str] = []
    full: list[str] = []
    grouped: list[str] = []
    for node_type, body in _walk(stmts):
        if node_type == "CommonTableExpr":
            ctes.add(body.get("ctename", "").lower())
        elif node_type == "RangeVar":
            relations.append(body.get("relname", "").lower())
        elif node_type == "CopyStmt" and not body.get("is_from"):
            copy_target = "program" if body.get("is_program") else ("file" if body.get("filename") else "stdout")
            copy_file = body.get("filename")
            if first_type == "CopyStmt":
                kind = "copy_to"
            if body.get("relation"):  # COPY table TO: the whole table
                full.append(body["relation"].get("relname", "").lower())
        elif node_type == "CopyStmt":
            if first_type == "CopyStmt":
                kind = "copy_from"
        elif node_type == "SelectStmt" and body.get("fromClause") and body.get("op", "SETOP_NONE") == "SETOP_NONE":
            shape = _read_shape(body)
            if shape:
                names = [n for n in _from_relations(body["fromClause"])]
                (full if shape == "rows" else grouped).extend(names)
    keep = lambda names: tuple(dict.fromkeys(n for n in names if n and n not in ctes))
    return StatementInfo(fingerprint(sql), kind, keep(relations), keep(full), keep(grouped), copy_target,
                         copy_file, len(stmts))


def _read_shape(select: dict) -> str | None:
    """'rows' or 'grouped' when a SELECT reads its FROM tables whole, None when it filters or only
    counts."""
    if select.get("whereClause") is not None:
        return None
    limit = select.get("limitCount")
    if limit is not None:
        value = limit.get("A_Const", {}).get("ival", {}).get("ival") if isinstance(limit, dict) else None
        if value is None or value < _LIMIT_STILL_FULL:
            return None
    if select.get("groupClause"):
        return "grouped"
    targets = [t.get("ResTarget", {}).get("val", {}) for t in select.get("targetList", [])]
    summary = all(("FuncCall" in v and _name(v["FuncCall"]) in _SUMMARY_AGGREGATES and not v["FuncCall"].get("over"))
                  or "A_Const" in v for v in targets)
    return None if targets and summary else "rows"


def _from_relations(items: list) -> list[str]:
    """Tables read directly by a FROM list (joins included, sub-selects are their own SELECT)."""
    out: list[str] = []
    for item in items:
        if "RangeVar" in item:
            out.append(item["RangeVar"].get("relname", "").lower())
        elif "JoinExpr" in item:
            out += _from_relations([item["JoinExpr"].get("larg", {}), item["JoinExpr"].get("rarg", {})])
    return out


def is_customer_table(name: str, configured: tuple[str, ...] = ()) -> bool:
    name = name.lower().rsplit(".", 1)[-1]
    if configured:
        return name in {c.lower().rsplit(".", 1)[-1] for c in configured}
    return name in CUSTOMER_TABLE_NAMES or any(name.endswith("_" + c) for c in CUSTOMER_TABLE_NAMES)


# --- payload -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Payload:
    """What SQL a string carries: ``strong`` signals (another statement, a UNION or sub-select, an
    ORDER BY, a tautology) make it payload; ``weak`` ones (a function call, a cast, a comment, an
    unbalanced parenthesis) only support it."""

    strong: tuple[str, ...] = ()
    weak: tuple[str, ...] = ()
    context: str | None = None  # how the value was embedded when it parsed: number, string, (, ((

    @property
    def is_payload(self) -> bool:
        return bool(self.strong) or len(self.weak) >= 2

    def as_dict(self) -> dict:
        return {"strong": list(self.strong), "weak": list(self.weak), "context": self.context}


_TEMPLATE = "SELECT a FROM t WHERE c = {}"
_CONTEXTS = (("number", "", ""), ("number (", "(", ")"), ("number ((", "((", "))"),
             ("string", "'", "'"), ("string (", "('", "')"), ("string ((", "(('", "'))"))


@lru_cache(maxsize=1)
def _benign() -> dict[str, Counter]:
    out = {}
    for name, left, right in _CONTEXTS:
        value = "x" if "string" in name else "1"
        out[name] = Counter(t for t, _ in _walk(_parse(_TEMPLATE.format(left + value + right))))
    return out


def _constant(node: dict) -> bool:
    if "A_Const" in node:
        return True
    if "TypeCast" in node:
        return _constant(node["TypeCast"].get("arg", {}))
    return False


def _tree_signals(stmts: list[dict], extra: Counter) -> tuple[set, set]:
    strong, weak = set(), set()
    if len(stmts) > 1:
        strong.add("stacked statement")
    if any(b.get("op", "SETOP_NONE") != "SETOP_NONE" for t, b in _walk(stmts) if t == "SelectStmt"):
        strong.add("union")
    elif extra["SelectStmt"] > 0 and extra["ResTarget"] > 0:  # '(select)' alone selects nothing
        strong.add("sub-select")
    if extra["SortBy"] > 0:
        strong.add("order by")
    for node_type, body in _walk(stmts):
        if node_type == "BoolExpr":
            for arg in body.get("args", []):
                expr = arg.get("A_Expr")
                if (expr and expr.get("kind", "AEXPR_OP") == "AEXPR_OP"
                        and (expr.get("name") or [{}])[-1].get("String", {}).get("sval") in _COMPARISONS
                        and _constant(expr.get("lexpr", {})) and _constant(expr.get("rexpr", {}))):
                    strong.add("tautology")
    if extra["FuncCall"] > 0:
        weak.add("function call")
    if extra["TypeCast"] > 0:
        weak.add("cast")
    if extra["CaseExpr"] > 0:
        weak.add("case")
    return strong, weak


def _comments(text: str, start: int, end: int) -> bool:
    try:
        tokens = parser.scan(text)
    except Exception:  # noqa: BLE001 - unterminated quote: no reliable tokens
        return False
    return any(t.name in ("SQL_COMMENT", "C_COMMENT") and start <= t.start < end for t in tokens)


@lru_cache(maxsize=65536)
def value_payload(value: str | None) -> Payload:
    """Does a value that should have been data (the quoted input of ``invalid input syntax for
    integer: "…"`` and similar) carry SQL? Tried in each injection context; the union of what the
    contexts where it parses add to the benign statement."""
    if not value or not value.strip():
        return Payload()
    strong: set[str] = set()
    weak: set[str] = set()
    where = None
    benign = _benign()
    for name, left, right in _CONTEXTS:
        prefix = _TEMPLATE.format(left)
        text = prefix + value + right
        stmts = _parse(text)
        if not stmts:
            continue
        extra = Counter(t for t, _ in _walk(stmts)) - benign[name]
        s, w = _tree_signals(stmts, extra)
        if _comments(text, len(prefix), len(prefix) + len(value)):
            w.add("comment")
        if (s or w) and where is None:
            where = name
        strong |= s
        weak |= w
    return Payload(tuple(sorted(strong)), tuple(sorted(weak)), where)


def _after_comparison(sql: str) -> Payload:
    """A statement that parses but failed: read what follows each comparison as the value an
    application would have put there (``… id = 1 AND 7483=CAST((CHR(113)||…) AS NUMERIC)``,
    ``… id = 1 ORDER BY 5566-- x``). ORDER BY alone is how applications end statements, so it
    counts only with a comment after it."""
    try:
        tokens = parser.scan(sql)
    except Exception:  # noqa: BLE001 - no reliable tokens
        return Payload((), (), "statement")
    for tok in tokens:
        if sql[tok.start:tok.end + 1] not in _COMPARISONS:
            continue
        found = value_payload(sql[tok.end + 1:].strip())
        strong = set(found.strong)
        if "order by" in strong and "comment" not in found.weak:
            strong.discard("order by")
        if strong or len(found.weak) >= 2:
            return Payload(tuple(sorted(strong)), found.weak, "statement, after a comparison")
    return Payload((), (), "statement")


@lru_cache(maxsize=65536)
def statement_payload(sql: str | None) -> Payload:
    """Does a statement that failed carry injected SQL? A tautology or a UNION of NULLs in its parse
    tree; or, when it does not parse, a statement that closes more parentheses than it opens, runs
    on after a ';' and ends in a comment (the shape of ``… = 1);SELECT PG_SLEEP(5)--``)."""
    if not sql:
        return Payload()
    stmts = _parse(sql)
    if stmts is not None:
        strong, weak = _tree_signals(stmts, Counter())
        # legitimate statements have all of these; only a tautology or a UNION of NULLs stays
        strong -= {"stacked statement", "sub-select", "order by", "union"}
        for node_type, body in _walk(stmts):
            if node_type == "SelectStmt" and body.get("op", "SETOP_NONE") != "SETOP_NONE":
                for arm in (body.get("larg", {}), body.get("rarg", {})):
                    vals = [t.get("ResTarget", {}).get("val", {}) for t in arm.get("targetList", [])]
                    if vals and all(v.get("A_Const", {}).get("isnull") for v in vals):
                        strong.add("union of nulls")
        if strong:
            return Payload(tuple(sorted(strong)), (), "statement")
        return _after_comparison(sql)
    try:
        tokens = parser.scan(sql)
    except Exception:  # noqa: BLE001 - an unterminated quote: O'Brien pasted into a statement
        return Payload()
    depth, unbalanced, stacked = 0, False, False
    comment_last = bool(tokens) and tokens[-1].name in ("SQL_COMMENT", "C_COMMENT")
    for i, tok in enumerate(tokens):
        if tok.name == "ASCII_40":
            depth += 1
        elif tok.name == "ASCII_41":
            depth -= 1
            unbalanced |= depth < 0
        elif tok.name == "ASCII_59" and any(t.name not in ("SQL_COMMENT", "C_COMMENT") for t in tokens[i + 1:]):
            stacked = True
    weak = tuple(name for name, on in (("unbalanced parenthesis", unbalanced), ("stacked statement", stacked),
                                       ("trailing comment", comment_last)) if on)
    return Payload((), weak, "statement")


# --- what a payload does -------------------------------------------------------------------------

# functions that make the database wait: the time-based technique
_SLEEP_FUNCTIONS = frozenset({"pg_sleep", "pg_sleep_for", "sleep", "benchmark", "dbms_lock.sleep"})
# schemas and relations through which an injection enumerates the database itself, and the system
# tables of other database systems a scanner names to tell which one answers (DUAL, RDB$DATABASE …)
_CATALOG_SCHEMAS = frozenset({"information_schema", "pg_catalog", "mysql", "performance_schema", "sys", "sysibm",
                              "sysmaster", "master", "domain"})
_CATALOG_PREFIXES = ("pg_", "rdb$", "msys", "sqlite_", "all_", "dba_")
_CATALOG_TABLES = frozenset({"dual", "dummy", "db_root", "numbers", "tables", "columns", "schemata", "sysusers",
                             "sysobjects", "syscolumns", "systables", "sysdatabases", "user_tables", "user_users"})
_CASTS_TO_NUMBER = frozenset({"numeric", "int4", "int8", "int2", "integer", "int", "bigint", "float8", "decimal"})


@dataclass(frozen=True)
class PayloadReads:
    """What an injected value asks the database for, from PostgreSQL's parse of it in the context
    where it parses (``Payload.context``): the techniques it uses, the tables and columns it names
    (the application's own statement around it left out), whether it enumerates the catalog, the
    rows it walks (``LIMIT``/``OFFSET``), the truth of its constant comparisons (a boolean probe's
    'true' or 'false' variant) and how long it asks the database to sleep."""

    techniques: tuple[str, ...] = ()  # boolean, error, time, union, stacked
    tables: tuple[str, ...] = ()  # schema.table as written, lower case (catalog tables included)
    columns: tuple[str, ...] = ()
    catalog: bool = False
    offset: int | None = None
    limit: int | None = None
    truth: bool | None = None
    sleep_s: float | None = None

    @property
    def data_tables(self) -> tuple[str, ...]:
        """Tables named that are not the catalog's."""
        return tuple(t for t in self.tables if not is_catalog_table(t))


def is_catalog_table(name: str) -> bool:
    """A relation of the database system itself (its catalog, or another system's), not of data."""
    schema, _, rel = name.lower().rpartition(".")
    return schema in _CATALOG_SCHEMAS or rel.startswith(_CATALOG_PREFIXES) or (not schema and rel in _CATALOG_TABLES)


def _ival(node: dict | None) -> int | None:
    if not isinstance(node, dict) or "A_Const" not in node:
        return None
    const = node["A_Const"]
    if "ival" in const:
        return const["ival"].get("ival", 0)  # pglast leaves a zero out
    return None


def _const_value(node: dict):
    if "TypeCast" in node:
        return _const_value(node["TypeCast"].get("arg", {}))
    const = node.get("A_Const")
    if const is None:
        return None
    if "ival" in const:
        return const["ival"].get("ival", 0)
    if "sval" in const:
        return const["sval"].get("sval", "")
    return None


def _comparison_truth(expr: dict) -> bool | None:
    """The value of ``constant op constant`` (= and <> only), None for anything else."""
    if expr.get("kind", "AEXPR_OP") != "AEXPR_OP":
        return None
    op = (expr.get("name") or [{}])[-1].get("String", {}).get("sval")
    if op not in ("=", "<>", "!="):
        return None
    left, right = _const_value(expr.get("lexpr", {})), _const_value(expr.get("rexpr", {}))
    if left is None or right is None:
        return None
    return (left == right) == (op == "=")


@lru_cache(maxsize=65536)
def payload_reads(value: str | None) -> PayloadReads:
    """What ``value`` (a parameter an application put into SQL) reads, if it is payload."""
    found = value_payload(value)
    if not found.is_payload or found.context is None:
        return PayloadReads()
    left, right = next((lf, rg) for name, lf, rg in _CONTEXTS if name == found.context)
    stmts = _parse(_TEMPLATE.format(left) + value + right)
    if not stmts:
        return PayloadReads()
    techniques: set[str] = set()
    if len(stmts) > 1:
        techniques.add("stacked")
    tables: list[str] = []
    columns: list[str] = []
    template_rel, template_cols = ["t"], ["a", "c"]  # the application's statement around the value
    offset = limit = None
    sleep = None
    truths: list[bool] = []
    for node_type, body in _walk(stmts):
        if node_type == "RangeVar":
            rel = body.get("relname", "").lower()
            if rel in template_rel and not body.get("schemaname"):
                template_rel.remove(rel)
                continue
            schema = body.get("schemaname", "").lower()
            tables.append(f"{schema}.{rel}" if schema else rel)
        elif node_type == "ColumnRef":
            names = [f.get("String", {}).get("sval", "").lower() for f in body.get("fields", []) if "String" in f]
            name = names[-1] if names else ""
            if name in template_cols and len(names) == 1:
                template_cols.remove(name)
                continue
            if name:
                columns.append(name)
        elif node_type == "SelectStmt":
            if body.get("op", "SETOP_NONE") != "SETOP_NONE":
                techniques.add("union")
            offset = _ival(body.get("limitOffset")) if body.get("limitOffset") else offset
            limit = _ival(body.get("limitCount")) if body.get("limitCount") else limit
        elif node_type == "FuncCall":
            name = _name(body)
            if name in _SLEEP_FUNCTIONS:
                techniques.add("time")
                args = body.get("args", [])
                seconds = _const_value(args[0]) if args else None
                if isinstance(seconds, (int, float)):
                    sleep = max(sleep or 0, float(seconds))
                elif isinstance(seconds, str):
                    with contextlib.suppress(ValueError):
                        sleep = max(sleep or 0, float(seconds))
        elif node_type == "TypeCast":
            target = [n.get("String", {}).get("sval", "").lower() for n in body.get("typeName", {}).get("names", [])]
            arg = body.get("arg", {})
            if target and target[-1] in _CASTS_TO_NUMBER and "A_Const" not in arg and "ColumnRef" not in arg:
                techniques.add("error")  # text built from the data, cast to a number: the error shows it
        elif node_type == "A_Expr":
            truth = _comparison_truth(body)
            if truth is not None:
                truths.append(truth)
        elif node_type == "BoolExpr":
            techniques.add("boolean")
        elif node_type == "SortBy":
            techniques.add("union")  # ORDER BY n: counting the columns a UNION must have
    if techniques & {"union", "time", "error", "stacked"}:
        techniques.discard("boolean")  # their AND/OR only wraps the technique that matters
    return PayloadReads(tuple(sorted(techniques)), tuple(dict.fromkeys(tables)), tuple(dict.fromkeys(columns)),
                        any(is_catalog_table(t) for t in tables), offset, limit,
                        all(truths) if truths else None, sleep)
