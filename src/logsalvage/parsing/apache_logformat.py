"""Apache ``LogFormat`` strings compiled into regular expressions.

Any format a server was configured with (read from ``httpd.conf`` in the evidence or the case
config) can be parsed; common, combined and vhost_combined are just three such strings.
"""

from __future__ import annotations

import re

from logsalvage.errors import ConfigError

_QUOTED = r'(?:[^"\\]|\\.)*'
# directive -> (group name, regex)
DIRECTIVES: dict[str, tuple[str, str]] = {
    "h": ("source_ip", r"\S+"),
    "a": ("source_ip", r"\S+"),
    "A": ("server_ip", r"\S+"),
    "l": ("ident", r"\S+"),
    "u": ("user_name", r"\S*?"),
    "t": ("time", r"\[[^\]]+\]"),
    "r": ("request", _QUOTED),
    "s": ("http_status", r"\d{3}|-"),
    ">s": ("http_status", r"\d{3}|-"),
    "<s": ("http_status", r"\d{3}|-"),
    "b": ("bytes", r"\d+|-"),
    "B": ("bytes", r"\d+"),
    "O": ("bytes_out", r"\d+|-"),
    "I": ("bytes_in", r"\d+|-"),
    "S": ("bytes_total", r"\d+|-"),
    "v": ("vhost", r"\S+"),
    "V": ("vhost", r"\S+"),
    "p": ("server_port", r"\d+"),
    "P": ("process_pid", r"\d+"),
    "D": ("duration_us", r"\d+"),
    "T": ("duration_s", r"\d+"),
    "U": ("url_path", r"\S*"),
    "q": ("url_query", r"\S*"),
    "m": ("http_method", r"\S+"),
    "H": ("http_version", r"\S+"),
    "X": ("connection_status", r"[X+-]"),
    "k": ("keepalive", r"\d+"),
    "L": ("log_id", r"\S+"),
    "f": ("file_path", r"\S+"),
    "R": ("handler", r"\S+"),
}
HEADER_NAMES = {"referer": "referrer", "user-agent": "user_agent"}
_TOKEN = re.compile(r"%[<>]?(?:!?\d{3}(?:,\d{3})*)?(?:\{([^}]*)\})?([<>]?[a-zA-Z%])")
NICKNAMES = {
    "common": '%h %l %u %t "%r" %>s %b',
    "combined": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
    "vhost_combined": '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
    "vhost_common": '%v %h %l %u %t "%r" %>s %b',
}


def _group_name(arg: str | None, directive: str, used: dict[str, int], body_from_o: bool = False) -> tuple[str, str]:
    if directive in ("i", "o"):
        key = (arg or "").lower()
        name = HEADER_NAMES.get(key, ("hdr_in_" if directive == "i" else "hdr_out_") + re.sub(r"\W", "_", key))
        rx = r".*?"
    elif directive in ("e", "n", "C", "x"):
        name, rx = "var_" + re.sub(r"\W", "_", (arg or "").lower()), r".*?"
    elif directive == "t" and arg:
        name, rx = "time_custom", r".*?"
    else:
        key = directive.lstrip("<") if directive not in DIRECTIVES else directive
        if key not in DIRECTIVES:
            raise ConfigError(f"LogFormat directive %{directive} is not supported")
        name, rx = DIRECTIVES[key]
        if key == "O" and body_from_o:
            name = "bytes"
    used[name] = used.get(name, 0) + 1
    if used[name] > 1:
        name = f"{name}_{used[name]}"
    return name, rx


def compile_logformat(fmt: str) -> str:
    """Regex source (anchored at both ends) for lines written with LogFormat ``fmt``."""
    fmt = NICKNAMES.get(fmt, fmt)
    out: list[str] = []
    used: dict[str, int] = {}
    pos = 0
    # a format that logs %O (bytes sent, headers included: Debian's and Ubuntu's `combined`) but not
    # %b/%B gives its size as the response size: the only one there is for size-based detection
    directives = [m.group(2) for m in _TOKEN.finditer(fmt)]
    body_from_o = "O" in directives and not {"b", "B"} & set(directives)
    for m in _TOKEN.finditer(fmt):
        literal = fmt[pos:m.start()]
        out.append(re.escape(literal).replace(r"\ ", " +") if literal.strip() == "" else re.escape(literal))
        pos = m.end()
        arg, directive = m.group(1), m.group(2)
        if directive == "%":
            out.append("%")
            continue
        name, rx = _group_name(arg, directive, used, body_from_o)
        quoted = literal.endswith('"')
        if quoted and rx in (r".*?", r"\S+", r"\S*"):
            rx = _QUOTED
        out.append(f"(?P<{name}>{rx})")
    out.append(re.escape(fmt[pos:]))
    return "^" + "".join(out) + "$"


_LOGFORMAT_LINE = re.compile(r'^\s*LogFormat\s+"((?:[^"\\]|\\.)*)"\s+(\S+)', re.IGNORECASE)
_CUSTOMLOG_LINE = re.compile(r'^\s*(?:CustomLog|TransferLog)\s+(\S+)\s+("(?:[^"\\]|\\.)*"|\S+)', re.IGNORECASE)


def read_httpd_conf(text: str) -> dict[str, object]:
    """LogFormat nicknames and CustomLog targets from an httpd.conf (``custom_logs``: formats resolved
    with this file's nicknames, then Apache's defaults; ``custom_named``: resolved with this file's only)."""
    formats: dict[str, str] = {}
    custom: list[tuple[str, str]] = []
    for line in text.splitlines():
        m = _LOGFORMAT_LINE.match(line)
        if m:
            formats[m.group(2)] = m.group(1).encode().decode("unicode_escape")
            continue
        m = _CUSTOMLOG_LINE.match(line)
        if m:
            fmt = m.group(2)
            fmt = fmt[1:-1].encode().decode("unicode_escape") if fmt.startswith('"') else fmt
            custom.append((m.group(1), fmt))
    resolved = [(path, formats.get(fmt, NICKNAMES.get(fmt, fmt))) for path, fmt in custom]
    # custom_named: as written (a nickname another file of the same server may declare)
    return {"formats": formats, "custom_logs": resolved,
            "custom_named": [(path, fmt if fmt not in formats else formats[fmt]) for path, fmt in custom]}


def split_request(request: str | None) -> dict[str, str | None]:
    """'GET /a/b.php?x=1 HTTP/1.1' -> method, url_path, url_query, http_version."""
    if not request or request == "-":
        return {}
    parts = request.split(" ")
    if len(parts) == 3 and parts[2].startswith("HTTP/"):
        method, url, version = parts
    elif len(parts) == 2 and parts[0].isupper():
        (method, url), version = parts, None
    else:
        return {"url_full": request}
    path, sep, query = url.partition("?")
    return {"http_method": method, "url_path": path, "url_query": query if sep else None,
            "http_version": version, "url_full": url}
