"""Passwords stored as text: password columns of type text/varchar in a schema dump found in the
evidence (``pg_dump -s``, read with PostgreSQL's own parser through pglast; ``mysqldump
--no-data``, read line by line). A schema cannot show whether the application hashes before it
stores, so each is a "verify hashing" finding."""

from __future__ import annotations

from dataclasses import dataclass

from logsalvage.audit.extras import extra_files
from logsalvage.audit.host import Host
from logsalvage.audit.model import Finding
from logsalvage.audit.tree import ConfigFile

DUMP_PLACES = ("var/backups/*.sql", "var/lib/pgsql/backups/*.sql", "root/*.sql")
PG_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "char", "citext", "name"})
MYSQL_TEXT_TYPES = ("varchar", "char", "text", "tinytext", "mediumtext", "longtext")
SECRET_WORDS = ("password", "passwd", "passwort", "passphrase", "pwd")
SECRET_PARTS = ("pass", "pw")  # whole parts of a snake_case name: user_pass, pw
NOT_A_SECRET = ("hash", "digest", "crypt", "salt", "reset", "token", "changed", "expire", "updated", "hint",
                "policy", "_at", "date", "flag", "length", "count", "attempt", "required", "last", "time")
HASHING_CALLS = ("crypt(", "digest(", "hmac(", "md5(", "sha1(", "sha224(", "sha256(", "sha384(", "sha512(")


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    type: str
    line: int


def is_password_name(name: str) -> bool:
    """password, passwd, user_password, user_pass, pwd — not password_hash, password_reset_token,
    passengers or passport."""
    n = name.lower()
    if any(x in n for x in NOT_A_SECRET):
        return False
    return any(w in n for w in SECRET_WORDS) or any(p in SECRET_PARTS for p in n.replace("-", "_").split("_"))


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, max(0, offset)) + 1


def _pg_columns(cf: ConfigFile) -> list[Column] | None:
    """Password-like text columns of a PostgreSQL dump; None when it is not one pglast can read."""
    from pglast import parse_sql
    from pglast.parser import ParseError
    from pglast.stream import RawStream

    # psql meta-commands (\connect, \restrict) and COPY data are not SQL: blanked, lines kept
    lines, in_copy = [], False
    for line in cf.lines:
        if in_copy:
            in_copy = line != "\\."
            lines.append("")
        elif line.startswith("\\"):
            lines.append("")
        else:
            lines.append(line)
            in_copy = line.startswith("COPY ") and line.rstrip().endswith("FROM stdin;")
    text = "\n".join(lines)
    data = text.encode("utf-8", "surrogatepass")
    try:
        statements = parse_sql(text)
    except (ParseError, ValueError):
        return None
    out = []
    for raw in statements:
        st = raw.stmt
        if type(st).__name__ != "CreateStmt":
            continue
        for col in st.tableElts or ():
            if type(col).__name__ != "ColumnDef" or col.typeName is None or not is_password_name(col.colname or ""):
                continue  # (a partition's columns have no type of their own)
            names = [n.sval for n in col.typeName.names]
            if names[-1] not in PG_TEXT_TYPES:
                continue
            default = ""
            for c in col.constraints or ():
                if getattr(c, "raw_expr", None) is not None:
                    try:
                        default = RawStream()(c.raw_expr).lower()
                    except Exception:  # an expression the printer does not know: not a hash call we can see
                        default = ""
            if any(call in default for call in HASHING_CALLS):
                continue
            out.append(Column(st.relation.relname, col.colname, names[-1], _line_of(data, col.location)))
    return out


def _mysql_columns(cf: ConfigFile) -> list[Column]:
    out, table = [], None
    for no, raw in cf.numbered():
        line = raw.strip()
        if line.upper().startswith("CREATE TABLE"):
            table = line.split("`")[1] if line.count("`") >= 2 else line.split()[2]
            continue
        if table is None:
            continue
        if line.startswith(")"):
            table = None
            continue
        if line.startswith("`") and line.count("`") >= 2:
            name = line.split("`")[1]
            rest = line.split("`", 2)[2].strip().lower()
            words = rest.split("(")[0].split()
            kind = words[0] if words else ""
            if is_password_name(name) and kind in MYSQL_TEXT_TYPES:
                out.append(Column(table, name, kind, no))
    return out


def _dumps(host: Host) -> list[ConfigFile]:
    rels = [r for r in extra_files(host) if r.endswith(".sql")]
    for pattern in DUMP_PLACES:
        rels += host.tree.files(pattern)
    out = []
    for rel in dict.fromkeys(rels):
        cf = host.tree.read(rel)
        if cf and any("CREATE TABLE" in line for line in cf.lines):
            out.append(cf)
    return out


def check(host: Host) -> list[Finding]:
    out: list[Finding] = []
    for cf in _dumps(host):
        head = "\n".join(cf.lines[:20])
        mysql = "MySQL dump" in head or "MariaDB dump" in head or any("ENGINE=" in line for line in cf.lines)
        columns = _mysql_columns(cf) if mysql else _pg_columns(cf)
        if columns is None:
            host.tree.notes.append(f"{cf.shown}: a schema dump PostgreSQL's parser cannot read")
            continue
        for c in columns:
            out.append(host.finding("schema.password_column", "medium", "hardening", cf,
                                    f"Column {c.table}.{c.name} ({c.type}) holds passwords as text: verify they "
                                    "are hashed",
                                    "If the application stores them as they are typed, one SQL injection or one "
                                    "stolen backup gives every customer's password away.",
                                    "Store only a salted slow hash (bcrypt, scrypt, Argon2, or pgcrypto's "
                                    "crypt(…, gen_salt('bf'))) and check the existing rows.", line=c.line))
    return out
