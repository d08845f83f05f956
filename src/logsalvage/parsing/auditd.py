"""The Linux audit log (auditd's audit.log): one record per line, its fields decoded.

The format file's pattern takes the header (``type=SYSCALL msg=audit(1514183336.123:456): …``: the
time is the epoch, the serial joins the records of one event); the rest is ``key=value`` pairs read
here, as auparse reads them: a quoted value is the text, an unquoted one of an untrusted-string
field (``a0``, ``name``, ``cmd``, ``acct``, ``proctitle`` …) is hex when it needed encoding (a
space, a quote, a control byte), and the user messages' ``msg='…'`` holds pairs of its own. The
ENRICHED format's interpretations follow a 0x1d byte (``UID="root" AUID="alice"``). The records of
one serial are not joined: ``audit_serial`` joins them in SQL.

Each record becomes ``audit.<type>`` with the pairs as fields (never over the record's own), and
the canonical ones: the decoded command line (EXECVE's arguments, USER_CMD's ``cmd``,
PROCTITLE's title) in ``command``; the account, address and result of PAM's records (USER_AUTH,
USER_LOGIN …) in ``user_name``, ``source_ip`` and ``outcome``; ``pid``, ``comm``, the path.
Nothing here raises: a pair that does not decode stays as written.
"""

from __future__ import annotations

import shlex

from logsalvage.parsing.hooks import LineHook
from logsalvage.parsing.lines import Line

# fields the kernel and libaudit write as untrusted strings: quoted, or hex when they need encoding
# (numbers and plain words such as addr=, old=, unit= are never hex: '64' stays 64)
ENCODED = frozenset({"name", "cwd", "comm", "exe", "path", "watch", "dir", "acct", "cmd", "proctitle", "data",
                     "ocomm", "key", "root_dir", "vm", "old-chardev", "new-chardev"})
_ENRICHED = "\x1d"
_RESULTS = {"success": "success", "yes": "success", "1": "success", "failed": "failure", "no": "failure",
            "0": "failure", "fail": "failure"}
# names a pair never takes: the record's own keys
_RESERVED = frozenset({"message", "raw", "event_type", "ts_raw", "log_host", "audit_type", "audit_serial"})


def pairs(text: str) -> list[tuple[str | None, str, bool]]:
    """``key=value`` pairs of an audit record's text: (key, value, quoted); a word without '=' comes
    as (None, word, False). One pass, linear in the text."""
    out: list[tuple[str | None, str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] == " ":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and text[j] not in " =":
            j += 1
        if j >= n or text[j] == " " or j == i:
            out.append((None, text[i:j + (j == i)], False))
            i = j + (j == i)
            continue
        key, j = text[i:j], j + 1
        if j < n and text[j] in "\"'":
            end = text.find(text[j], j + 1)
            end = n if end < 0 else end
            out.append((key, text[j + 1:end], True))
            i = end + 1
        elif j < n and text[j] == "{":
            end = text.find("}", j)
            end = n - 1 if end < 0 else end
            out.append((key, text[j:end + 1], False))
            i = end + 1
        else:
            end = text.find(" ", j)
            end = n if end < 0 else end
            out.append((key, text[j:end], False))
            i = end
    return out


def unhex(value: str) -> str | None:
    """The text of an audit hex string ('69643B20756E616D65202D61' is 'id; uname -a'), or None."""
    if not value or len(value) % 2 or not all(c in "0123456789ABCDEFabcdef" for c in value):
        return None
    return bytes.fromhex(value).decode("utf-8", "backslashreplace")


def _value(key: str, value: str, quoted: bool, execve: bool) -> str:
    if quoted or value in ("?", "(null)", "(none)"):
        return value
    arg = execve and key[:1] == "a" and key[1:].split("[", 1)[0].isdigit()
    if key in ENCODED or arg:
        text = unhex(value)
        if text is not None:
            return text
    return value


def _argv(fields: dict[str, str]) -> list[str]:
    """EXECVE's arguments in order: a0, a1 … or, for a long one, its pieces a1[0], a1[1] …"""
    args: dict[int, str] = {}
    pieces: dict[int, list[tuple[int, str]]] = {}
    for key, value in fields.items():
        if key[:1] != "a" or key == "argc":
            continue
        head, _, rest = key[1:].partition("[")
        if not head.isdigit():
            continue
        if rest:
            part = rest.rstrip("]")
            if part.isdigit():
                pieces.setdefault(int(head), []).append((int(part), value))
        elif "_" not in head:
            args[int(head)] = value
    for index, parts in pieces.items():
        args[index] = "".join(v for _, v in sorted(parts))
    return [args[k] for k in sorted(args)]


def _title(text: str) -> str:
    """A process title (argv joined by NUL bytes) as a shell would write the command."""
    return shlex.join([part for part in text.split("\x00")]) if "\x00" in text else text


def decode(rec: dict) -> None:
    """The fields of an audit record from its message (see the module's docstring)."""
    kind = str(rec.get("audit_type") or "")
    rec["event_type"] = "audit." + kind.split("[", 1)[0].lower() if kind else "audit"
    if rec.get("audit_serial") is not None:
        try:
            rec["audit_serial"] = int(rec["audit_serial"])
        except ValueError:
            pass
    text = rec.get("message") or ""
    own, _, enriched = text.partition(_ENRICHED)
    execve = kind == "EXECVE"
    fields: dict[str, str] = {}
    words: list[str] = []
    for key, value, quoted in pairs(own):
        if key is None:
            words.append(value)
        elif key == "msg" and quoted:  # a user message's own pairs (op=… acct=… res=…)
            for k2, v2, q2 in pairs(value):
                if k2 is not None:
                    fields.setdefault(k2, _value(k2, v2, q2, False))
        else:
            fields.setdefault(key, _value(key, value, quoted, execve))
    for key, value, quoted in pairs(enriched):
        if key is not None:
            fields.setdefault(key, value)
    if kind == "AVC" and words:  # 'avc:  denied  { getattr } for'
        if len(words) > 1 and words[0] == "avc:":
            rec["avc_result"] = words[1]
        if "{" in words and "}" in words:
            rec["avc_permissions"] = " ".join(words[words.index("{") + 1:words.index("}")])
    for key, value in fields.items():
        if key not in _RESERVED and key[:1] != "_" and rec.get(key) is None:
            rec[key] = value
    _canonical(rec, kind, fields)


def _canonical(rec: dict, kind: str, fields: dict[str, str]) -> None:
    def set_(name: str, value) -> None:
        if value not in (None, "", "?", "(null)", "(none)"):
            rec[name] = value

    pid = fields.get("pid")
    if pid is not None and pid.isdigit() and int(pid) < 1 << 63:
        rec["process_pid"] = int(pid)
    set_("program", fields.get("comm"))
    set_("file_path", fields.get("name") or fields.get("cwd") or fields.get("path"))
    set_("action", fields.get("op"))
    result = fields.get("res") or fields.get("success")
    if result is not None:
        set_("outcome", _RESULTS.get(result, result))
    if kind == "EXECVE":
        argv = _argv(fields)
        if argv:
            rec["command"] = shlex.join(argv)
    elif kind == "PROCTITLE":
        set_("command", _title(fields.get("proctitle") or ""))
    elif fields.get("cmd"):
        set_("command", fields["cmd"])
    if kind.startswith(("USER_", "CRED_", "ANOM_LOGIN")) or kind in ("LOGIN", "ADD_USER", "DEL_USER", "ADD_GROUP",
                                                                     "DEL_GROUP", "ACCT_LOCK", "ACCT_UNLOCK"):
        set_("user_name", fields.get("acct") or fields.get("id"))
        set_("source_ip", fields.get("addr"))


class AuditLog(LineHook):
    def line(self, line: Line, data: bytes, text: str, valid: bool) -> None:
        rec = self.parse(text) if text.strip() else None
        if rec is None:
            self.unusable(line, data, text, valid)
            return
        self.begin(rec, line, text, valid)
        decode(rec)
        self.emit(rec)
