"""nginx: ``nginx.conf`` and its ``include`` files read as directives with line numbers and blocks;
the access log's format (client address, request time), listings, version banners.

(A small tokenizer of our own: ``crossplane`` opens included files by name itself, following
links out of an evidence tree, and reads no text handed to it.)
"""

from __future__ import annotations

from dataclasses import dataclass

from logsalvage.audit.conf import parent, quote_line, relative_to_root
from logsalvage.audit.host import Host
from logsalvage.audit.model import Finding
from logsalvage.audit.tree import ConfigFile

MAIN_CONFS = ("etc/nginx/nginx.conf", "usr/local/nginx/conf/nginx.conf", "usr/local/etc/nginx/nginx.conf")
COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
            '"$http_referer" "$http_user_agent"')
MAX_INCLUDE_DEPTH = 16


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    file: ConfigFile
    line: int
    blocks: tuple[str, ...]  # enclosing blocks: "http", "server", "location /x"

    @property
    def text(self) -> str:
        return quote_line(self.file.lines[self.line - 1])


def _tokens(cf: ConfigFile):
    """(line, token, quoted) of an nginx configuration: words, quoted strings, ``{``, ``}``, ``;``."""
    text = "\n".join(cf.lines)
    line, i, n = 1, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            yield line, c, False
            i += 1
        elif c in "\"'":
            start_line, buf, i = line, [], i + 1
            while i < n and text[i] != c:
                if text[i] == "\\" and i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                    continue
                if text[i] == "\n":
                    line += 1
                buf.append(text[i])
                i += 1
            i += 1
            yield start_line, "".join(buf), True
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in "{};\"'":
                i += 1
            yield line, text[start:i], False


def _read(host: Host, cf: ConfigFile, blocks: list[str], out: list[Directive], depth: int, seen: set[str],
          prefix: str) -> None:
    """``prefix``: the main file's directory, which relative includes are taken from (nginx's conf prefix)."""
    if depth > MAX_INCLUDE_DEPTH or cf.rel in seen:
        return
    seen.add(cf.rel)  # each file once
    words: list[str] = []
    first_line = 0
    for line, tok, quoted in _tokens(cf):
        if not quoted and tok in ("{", ";", "}"):
            if tok == "}":
                if blocks:
                    blocks.pop()
                words = []
                continue
            if words:
                d = Directive(words[0].lower(), tuple(words[1:]), cf, first_line, tuple(blocks))
                if tok == "{":
                    blocks.append(" ".join([d.name, *d.args]))
                elif d.name == "include" and d.args:
                    for rel in host.tree.files(relative_to_root(d.args[0], prefix)):
                        inc = host.tree.read(rel)
                        if inc:
                            _read(host, inc, blocks, out, depth + 1, seen, prefix)
                else:
                    out.append(d)
            words = []
            continue
        if not words:
            first_line = line
        words.append(tok)


def load(host: Host) -> tuple[ConfigFile, list[Directive]] | None:
    def make(h: Host):
        for rel in MAIN_CONFS:
            cf = h.tree.read(rel)
            if cf is not None:
                out: list[Directive] = []
                _read(h, cf, [], out, 0, set(), parent(rel))
                return cf, out
        return None
    return host.fact("nginx", make)


def check(host: Host) -> list[Finding]:
    found = load(host)
    if found is None:
        return []
    main, directives = found
    f = host.finding
    out: list[Finding] = []
    formats = {"combined": COMBINED}
    for d in directives:
        if d.name == "log_format" and len(d.args) >= 2:
            formats[d.args[0]] = " ".join(d.args[1:])
    logs = [d for d in directives if d.name == "access_log"]
    timed = None
    for d in logs:
        if d.args and d.args[0] == "off":
            out.append(f("nginx.access_log", "high", "log_audit", d,
                         f"The access log is switched off ({' / '.join(d.blocks) or 'main'})",
                         "Requests there leave no trace.", "Remove 'access_log off'."))
            continue
        fmt_name = d.args[1] if len(d.args) >= 2 and "=" not in d.args[1] else "combined"
        fmt = formats.get(fmt_name, "")
        if "$remote_addr" not in fmt and "$http_x_forwarded_for" not in fmt and "$realip_remote_addr" not in fmt:
            out.append(f("nginx.log_client", "high", "log_audit", d,
                         f"The access log format '{fmt_name}' does not record the client address",
                         "Requests cannot be traced to who made them.", "Add $remote_addr to the log_format."))
        if "$request_time" in fmt or "$upstream_response_time" in fmt:
            timed = timed or d
        else:
            out.append(f("nginx.log_duration", "medium", "log_audit", d,
                         f"The access log format '{fmt_name}' does not record how long requests took",
                         "Time-based SQL injection and large downloads are told apart by their duration.",
                         "Add $request_time to the log_format."))
    if not logs:
        out.append(f("nginx.log_duration", "medium", "log_audit", main,
                     "The access log uses nginx's default 'combined' format (no request time)",
                     "Time-based SQL injection and large downloads are told apart by their duration.",
                     "Declare a log_format with $request_time and use it in access_log."))
    if timed:
        out.append(f("nginx.log_duration", "strength", "log_audit", timed,
                     "The access log records each request's duration ($request_time)",
                     "Slow answers show time-based SQL injection and large downloads.", "Keep it."))
    for d in directives:
        if d.name == "autoindex" and d.args and d.args[0] == "on":
            out.append(f("nginx.autoindex", "medium", "pentest", d, "Directory listings are on (autoindex on)",
                         "Anyone can list uploaded scripts, backups and configuration copies.", "Set autoindex off."))
    tokens = [d for d in directives if d.name == "server_tokens"]
    if not tokens or tokens[-1].args[:1] != ("off",):
        out.append(f("nginx.server_tokens", "low", "pentest", tokens[-1] if tokens else main,
                     "nginx announces its version (server_tokens is not off)",
                     "Scanners pick targets by version.", "Set server_tokens off in the http block."))
    return out


def document_roots(host: Host) -> list[Directive]:
    found = load(host)
    return [d for d in found[1] if d.name == "root" and d.args] if found else []


def server_names(host: Host) -> list[Directive]:
    found = load(host)
    return [d for d in found[1] if d.name == "server_name" and d.args] if found else []
