"""MySQL/MariaDB statements as PostgreSQL reads them, so that one analysis (``sqltext``: fingerprints,
whole-table reads, payload) serves both servers' logs.

sqlglot translates the dialect (backquoted names, ``LIMIT a, b``, ``#`` comments, ``0x..`` literals,
version comments ``/*!40001 … */``). Two things have no PostgreSQL equivalent and are recognised
before translation:

* ``SELECT … INTO OUTFILE|DUMPFILE 'path'`` writes the result into a file on the database host:
  read as ``COPY (SELECT …) TO 'path'`` (kind ``copy_to``, target ``file``);
* ``SELECT /*!40001 SQL_NO_CACHE */ * FROM `t``` is how mysqldump reads each table: read as
  ``COPY t TO stdout``, pg_dump's way, so a dump session is one whatever the server.

A statement sqlglot cannot read is returned as it was (PostgreSQL's parser then decides, and an
unparsable statement is its own group, as for PostgreSQL).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot.errors import SqlglotError

from logsalvage.parsing.dialect import compile_shared

# sqlglot warns on stderr for every statement it reads as an opaque command
logging.getLogger("sqlglot").setLevel(logging.ERROR)

_OUTFILE = compile_shared(
    r"(?is)\s+INTO\s+(?:OUTFILE|DUMPFILE)\s+'((?:[^'\\]|\\.)*)'"
    r"(?:\s+(?:CHARACTER\s+SET\s+\w+|FIELDS|COLUMNS|LINES|TERMINATED|OPTIONALLY|ENCLOSED|ESCAPED|STARTING|BY"
    r"|'(?:[^'\\]|\\.)*'))*")
_DUMP = compile_shared(r"(?is)^\s*SELECT\s+/\*!40001\s+SQL_NO_CACHE\s*\*/\s+\*\s+FROM\s+`?([A-Za-z0-9_$]+)`?\s*;?\s*$")


@dataclass(frozen=True)
class Translated:
    sql: str  # PostgreSQL text
    translated: bool  # False: sqlglot could not read it, ``sql`` is the original


@lru_cache(maxsize=65536)
def to_postgres(sql: str) -> Translated:
    dump = _DUMP.match(sql)
    if dump:
        return Translated(f'COPY "{dump.group(1)}" TO stdout', True)
    outfile = _OUTFILE.search(sql)
    if outfile:
        path = outfile.group(1).replace("\\'", "''")
        inner = to_postgres(sql[:outfile.start()] + sql[outfile.end():])
        if not inner.translated:
            return Translated(sql, False)
        return Translated(f"COPY ({inner.sql.rstrip().rstrip(';')}) TO '{path}'", True)
    try:
        out = sqlglot.transpile(sql, read="mysql", write="postgres")
    except (SqlglotError, ValueError, RecursionError):
        return Translated(sql, False)
    text = "; ".join(s for s in out if s.strip())
    return Translated(text, True) if text else Translated(sql, False)
