"""MySQL/MariaDB statements read as PostgreSQL reads them: what they read, whether they write a file,
whether they are mysqldump's, whether they carry injected SQL."""

from __future__ import annotations

import pytest

from logsalvage.detect import sqltext
from logsalvage.detect.mysqltext import to_postgres


@pytest.mark.parametrize("mysql, kind, full_reads, copy_target", [
    # mysqldump reads each table like this: a dump, as pg_dump's COPY … TO stdout
    ("SELECT /*!40001 SQL_NO_CACHE */ * FROM `customers`", "copy_to", ("customers",), "stdout"),
    ("select name, email into outfile '/tmp/x.csv' FIELDS TERMINATED BY ',' ENCLOSED BY '\"' from customers",
     "copy_to", ("customers",), "file"),
    ("SELECT * FROM `customers` INTO OUTFILE '/var/tmp/c.txt'", "copy_to", ("customers",), "file"),
    ("SELECT * FROM `customers`", "select", ("customers",), None),
    ("SELECT * FROM customers LIMIT 10, 20", "select", (), None),
    ("SELECT `name` FROM `customers` WHERE `id` = 5 # the account page", "select", (), None),
])
def test_reads(mysql, kind, full_reads, copy_target):
    t = to_postgres(mysql)
    info = sqltext.analyse(t.sql)
    assert t.translated and (info.kind, info.full_reads, info.copy_target) == (kind, full_reads, copy_target)


def test_constants_do_not_change_the_fingerprint():
    a, b = (sqltext.analyse(to_postgres(f"SELECT `name` FROM `customers` WHERE `id` = {n}").sql) for n in (5, 6))
    assert a.fingerprint and a.fingerprint == b.fingerprint


@pytest.mark.parametrize("mysql, payload", [
    ("SELECT * FROM users WHERE id=1 UNION SELECT concat(0x7178,user,0x7178),2 FROM mysql.user#", True),
    ("SELECT * FROM users WHERE id=1 AND 5617=5617", True),
    ("SELECT * FROM users WHERE id=1", False),
    ("SELECT * FROM users WHERE name='O''Brien'", False),
])
def test_payload(mysql, payload):
    assert sqltext.statement_payload(to_postgres(mysql).sql).is_payload is payload


def test_unreadable_statement_is_kept_as_it_was():
    assert to_postgres("SHOW CREATE TABLE `customers`").translated is False
    assert to_postgres("SHOW CREATE TABLE `customers`").sql == "SHOW CREATE TABLE `customers`"
