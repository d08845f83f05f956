"""web01's Apache 2.2 logs: access_log (combined) and error_log, rotated weekly.

Quirks planted on purpose (all real Apache/bot behaviour):
- access_log lines are written when a request ends but stamped with its start, so a slow
  request (reserve.php waiting on the database) appears after later ones;
- error_log has lines without an Apache header: the stderr of the bots run through the web
  shells (find's complaints, wget's progress output, curl and perl errors);
- each rotation leaves ``SIGHUP received`` at the end of the old error_log and the restart
  notices at the start of the new one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator

from . import actors, docroot, sqli
from .attack import PROBE_PATHS, AttackPlan, Download
from .logtext import LogText
from .stamps import DAY, apache_access, apache_error, local, local_midnight, wget, ymd
from .timeline import REBOOT, SERVER_STOP, Plan

SITE = f"http://{actors.DOMAIN}"
RESTART = ("[notice] Digest: generating secret for digest authentication ...",
           "[notice] Digest: done",
           "[notice] Apache/2.2.21 (Unix) PHP/5.3.29 configured -- resuming normal operations")
PERL_INC = ("/usr/local/lib64/perl5 /usr/local/share/perl5 /usr/lib64/perl5/vendor_perl "
            "/usr/share/perl5/vendor_perl /usr/lib64/perl5 /usr/share/perl5 .")
_HOURLY = (0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 0.9, 1.3, 1.6, 1.7, 1.7, 1.8, 1.7, 1.6, 1.6, 1.5,
           1.5, 1.6, 1.8, 1.9, 1.7, 1.2, 0.7)
_ROUTES = (("KGS", "AMM"), ("AMM", "KGS"), ("KGS", "NAZ"), ("NAZ", "KGS"), ("FKO", "KGS"))
_REFERRERS = ("-", "https://www.google.co.jp/", "https://search.yahoo.co.jp/", "-",
              "https://www.google.com/", "http://www.bing.com/")


@dataclass
class WebWeek:
    access_name: str          # access_log-YYYYMMDD or access_log
    error_name: str
    rotation: int | None      # time of the rotation that closed the file (None: current)
    access: LogText
    error: LogText


def _access(ip, t, method, path, status, size, ref, ua) -> str:
    return (f'{ip} - - [{apache_access(t)}] "{method} {path} HTTP/1.1" {status} '
            f'{size if size else "-"} "{ref}" "{ua}"')


def _human(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1048576:.1f}M"
    return f"{max(1, round(n / 1024))}K"


def wget_lines(d: Download, rng: random.Random) -> list[tuple[str, int | None]]:
    """wget 1.14's output for one download (dot progress, no blank lines)."""
    out = [(f"--{wget(d.start)}--  {d.url}", d.start)]
    by_name = d.host != d.address
    if by_name:
        out.append((f"Resolving {d.host}... {d.address}", None))
        target = f"{d.host}|{d.address}|:80"
    else:
        target = f"{d.address}:80"
    if d.outcome == "refused":
        out.append((f"Connecting to {target}... failed: Connection refused.", None))
        return out
    out.append((f"Connecting to {target}... connected.", None))
    if d.outcome == "404":
        out.append(("HTTP request sent, awaiting response... 404 Not Found", None))
        out.append((f"{wget(d.start)} ERROR 404: Not Found.", d.start))
        return out
    ctype = "application/x-gzip" if d.name.endswith("tgz") else "text/plain"
    out.append(("HTTP request sent, awaiting response... 200 OK", None))
    out.append((f"Length: {d.length} ({_human(d.length)}) [{ctype}]", None))
    out.append((f"Saving to: `{d.name}'", None))
    secs = max(0.05, d.end - d.start + rng.random())
    kb_total = d.length // 1024
    rate = d.length / 1024 / secs
    k = 0
    while True:
        dots = min(50, kb_total - k)
        done = min(d.length, (k + dots) * 1024) if k + 50 < kb_total else d.length
        pct = int(done * 100 / d.length)
        groups = " ".join("." * min(10, dots - g) for g in range(0, dots, 10))
        last = k + 50 >= kb_total
        speed = max(1, int(rate * rng.uniform(0.6, 1.4)))
        if last:
            out.append((f"{k:>6}K {groups:<54} {pct:>2}% {speed}K={secs:.1f}s", None))
            break
        eta = max(0, int((kb_total - k - 50) / max(rate, 1)))
        out.append((f"{k:>6}K {groups:<54} {pct:>2}% {speed:>4}K {eta}s", None))
        k += 50
    out.append((f"{wget(d.end)} ({rate:.0f} KB/s) - `{d.name}' saved [{d.length}/{d.length}]", d.end))
    return out


class WebLogs:
    def __init__(self, plan: Plan, attack: AttackPlan):
        self.plan = plan
        self.attack = attack
        self.downloads: list[Download] = []

    # --- traffic sources, each a list of (logged time, sort key, access line, start time) ----
    def _normal_day(self, day: int) -> tuple[list, list]:
        """One day of customers: page views with their assets, and favicon 404s."""
        rng = random.Random(f"{self.plan.seed}:web-day:{day}")
        per_day = self.plan.counts["normal_requests_per_day"]
        lt = local(day)
        season = 1.35 if (lt.tm_mon, lt.tm_mday) >= (12, 25) or lt.tm_mon == 8 or \
            (lt.tm_mon, lt.tm_mday) >= (4, 28) and (lt.tm_mon, lt.tm_mday) <= (5, 7) else 1.0
        sessions = int(per_day * season / 9.0 + rng.random())
        acc, err = [], []
        weights = _HOURLY
        for _ in range(sessions):
            hour = rng.choices(range(24), weights)[0]
            t = day + hour * 3600 + rng.randrange(3600)
            ip = actors.jp_client(rng)
            ua = rng.choice(actors.BROWSERS)
            bot = "bot" in ua
            ref = rng.choice(_REFERRERS)
            pages = ["/"]
            if not bot or rng.random() < 0.5:
                o, dst = rng.choice(_ROUTES)
                dd = local(t + rng.randint(1, 40) * DAY)
                pages.append(f"/search.php?from={o}&to={dst}&date={dd.tm_year}-{dd.tm_mon:02d}-{dd.tm_mday:02d}")
                if rng.random() < 0.55:
                    pages.append(f"/reserve.php?voyage={rng.randint(800, 2400)}")
                    if rng.random() < 0.6:
                        pages.append("POST /confirm.php")
            cached = rng.random() < 0.4
            for n, page in enumerate(pages):
                method = "GET"
                if page.startswith("POST "):
                    method, page = "POST", page[5:]
                dur = rng.randint(3, 9) if page.startswith(("/reserve", "/search")) and rng.random() < 0.05 else 0
                size = {"/": 9321}.get(page, rng.randint(2200, 14000))
                acc.append((t + dur, t, _access(ip, t, method, page, 200, size, ref, ua)))
                if n == 0 and not bot:
                    for asset in ("/css/style.css", "/js/jquery-1.11.3.min.js", "/js/app.js",
                                  "/img/logo.png", "/img/ferry.jpg"):
                        ta = t + rng.randint(0, 1)
                        status, sz = (304, 0) if cached else (200, docroot.STATIC[asset])
                        acc.append((ta, ta, _access(ip, ta, "GET", asset, status, sz, SITE + "/", ua)))
                    if not cached:
                        ta = t + 1
                        acc.append((ta, ta, _access(ip, ta, "GET", "/favicon.ico", 404, 209, "-", ua)))
                        err.append((ta, f"[{apache_error(ta)}] [error] [client {ip}] File does not exist: "
                                        f"{docroot.DOCROOT}/favicon.ico"))
                if page.startswith("/reserve") and rng.random() < 0.01:
                    err.append((t, f"[{apache_error(t)}] [error] [client {ip}] PHP Notice:  Undefined index: "
                                   f"seat_class in {docroot.DOCROOT}/reserve.php on line 87, "
                                   f"referer: {SITE}/search.php"))
                ref = SITE + page
                t += rng.randint(15, 240)
        return acc, err

    def _probe_burst(self, b) -> tuple[list, list]:
        rng = random.Random(f"{self.plan.seed}:probe:{b.index}")
        acc, err = [], []
        t = b.t
        for i in range(b.count):
            if b.paths:
                path, status = b.paths[i % len(b.paths)], 404
            else:
                path, status = rng.choice(PROBE_PATHS)
            method = "POST" if path.endswith("eval-stdin.php") else "GET"
            size = {404: rng.choice((209, 210, 226, 231)), 400: 226, 403: 213}[status]
            acc.append((t, t, _access(b.ip, t, method, path, status, size, "-", b.agent)))
            head = f"[{apache_error(t)}] [error] [client {b.ip}] "
            if status == 400:
                err.append((t, head + "client sent HTTP/1.1 request without hostname (see RFC2616 "
                                      f"section 14.23): {path}"))
            elif status == 403:
                err.append((t, head + f"client denied by server configuration: {docroot.DOCROOT}{path}"))
            elif path.startswith("/cgi-bin/"):
                err.append((t, head + f"script not found or unable to stat: /var/www/cgi-bin/{path[9:]}"))
            else:
                first = path.split("?")[0].strip("/").split("/")[0] or path
                err.append((t, head + f"File does not exist: {docroot.DOCROOT}/{first}"))
            t += rng.choice((0, 0, 1, 1, 2))
        return acc, err

    def _shell(self, s) -> tuple[list, list]:
        rng = random.Random(f"{self.plan.seed}:shell:{s.t}")
        # an exfil request (exfil.ExfilAccess) is written when psql returns, stamped with its start
        logged = s.t + getattr(s, "duration", 0)
        acc = [(logged, s.t, _access(s.ip, s.t, s.method, s.path, 200, s.size, "-", s.agent))]
        err = []
        t = s.t + 1
        if s.effect in ("download", "vtgz"):
            for j, (line, lt) in enumerate(wget_lines(s.download, rng)):
                err.append((s.download.start + j * 1e-3, line, lt, True))
        elif s.effect == "curl":
            err.append((t, "curl: (7) couldn't connect to host", None, True))
        elif s.effect == "perl":
            script = f"/tmp/.{rng.choice('abcdefxyz')}{rng.randint(1, 9)}.pl"
            err.append((t, f"Can't locate IO/Socket/SSL.pm in @INC (@INC contains: {PERL_INC}) at "
                           f"{script} line 9.", None, True))
            err.append((t + 1e-3, f"BEGIN failed--compilation aborted at {script} line 9.", None, True))
        elif s.effect == "exfil":
            for j, line in enumerate(s.stderr):
                err.append((s.t + 0.5 + j * 1e-3, line, None, True))
        elif s.effect == "find":
            finds = self.attack.finds
            for j, line in enumerate(finds):
                err.append((s.t + 1 + j * (100 / len(finds)), line, None, True))
        return acc, err

    # --- the weekly files ---------------------------------------------------------------------
    def weeks(self) -> Iterator[WebWeek]:
        plan = self.plan
        rots = list(plan.web_rotations)
        bounds = list(zip(rots, rots[1:] + [None]))
        probes = self.attack.probes
        shells = self.attack.shells
        sqli_reqs = sqli.requests(plan.seed)
        for wi, (w0, w1) in enumerate(bounds):
            end = w1 if w1 is not None else SERVER_STOP
            acc: list[tuple] = []     # (logged time, start time, line)
            err: list[tuple] = []     # (sort time, line, time written in the line or None, stray)
            day = local_midnight(w0) - DAY
            while day < end:
                a, e = self._normal_day(day)
                acc += a
                err += [(t, line, t, False) for t, line in e]
                day += DAY
            for b in probes:
                if w0 - DAY <= b.t < end:
                    a, e = self._probe_burst(b)
                    acc += a
                    err += [(t, line, t, False) for t, line in e]
            for s in shells:
                if w0 - 60 <= s.t < end:
                    a, e = self._shell(s)
                    if s.t >= w0:
                        acc += a
                        if s.download is not None:
                            self.downloads.append(s.download)
                    err += [x for x in e if w0 <= x[0] < end]
            for p in sqli_reqs:
                if w0 <= p.time < end:
                    acc.append((p.time, p.time, _access(sqli.SCANNER, p.time, "GET", p.url, 200,
                                                        1874 if p.payload else 6120, "-",
                                                        actors.SQLMAP_AGENT)))
            # server lifecycle
            if wi > 0:
                for line in RESTART:
                    err.append((w0 + 1 + 1e-3, f"[{apache_error(w0 + 1)}] {line}", w0 + 1, False))
            if w1 is not None:
                err.append((w1 + 0.5, f"[{apache_error(w1)}] [notice] SIGHUP received.  Attempting to restart",
                            w1, False))
            if w0 <= REBOOT[0] < end:
                err.append((REBOOT[0], f"[{apache_error(REBOOT[0])}] [notice] caught SIGTERM, shutting down",
                            REBOOT[0], False))
                up = REBOOT[1] + 7
                for line in RESTART:
                    err.append((up + 1e-3, f"[{apache_error(up)}] {line}", up, False))
            if w1 is None:
                err.append((SERVER_STOP + 0.5, f"[{apache_error(SERVER_STOP)}] [notice] caught SIGTERM, shutting down",
                            SERVER_STOP, False))

            def alive(t):
                return not (REBOOT[0] <= t <= REBOOT[1] + 7) and t < SERVER_STOP

            acc = [x for x in acc if w0 <= x[0] < end and alive(x[0]) and alive(x[1])]
            err = [x for x in err if (w0 <= x[0] < end or x[0] in (end + 0.5, SERVER_STOP + 0.5))
                   and (alive(x[0]) or "SIGTERM" in x[1])]
            # stable sorts: lines written at the same moment keep the order they were made in
            acc.sort(key=lambda x: (x[0], x[1]))
            err.sort(key=lambda x: x[0])
            access = LogText("apache-access")
            for logged, start, line in acc:
                access.add(line, start)
            error = LogText("apache-error")
            for _, line, t, _stray in err:
                error.add(line, t)
            suffix = f"-{ymd(w1)}" if w1 is not None else ""
            yield WebWeek(f"access_log{suffix}", f"error_log{suffix}", w1, access, error)
