"""web01's vsftpd logs: the native vsftpd.log (dual_log_enable) and the wu-ftpd style xferlog.

vsftpd logs a session from three processes: CONNECT from the connection's process (pid p),
LOGIN from its privileged parent (p-1), transfers from the logged-in child (p+1).
"""

from __future__ import annotations

import random

from .attack import AttackPlan
from .logtext import LogText
from .stamps import ctime
from .timeline import Plan


def _rate(r: float) -> str:
    return f"{r:.2f}Kbyte/sec"


def render(plan: Plan, attack: AttackPlan) -> tuple[LogText, LogText]:
    rng = random.Random(f"{plan.seed}:ftp")
    vs = LogText("vsftpd")
    xf = LogText("xferlog")
    lines: list[tuple[int, int, str]] = []     # (time, order, line)
    xfer: list[tuple[int, int, str]] = []
    pid = 2810
    order = 0
    for s in attack.ftp:
        pid += rng.randint(40, 900)
        if pid > 32000:          # pid_max 32768 wraps
            pid -= 31000
        if s.pid is not None:
            pid = s.pid
        t = s.t
        if not s.ok:
            left = s.attempts
            while left > 0:
                lines.append((t, order, f'{ctime(t)} [pid {pid}] CONNECT: Client "{s.ip}"'))
                order += 1
                for _ in range(min(3, left)):
                    t += rng.randint(2, 5)
                    lines.append((t, order, f'{ctime(t)} [pid {pid - 1}] [{s.user}] FAIL LOGIN: Client "{s.ip}"'))
                    order += 1
                left -= 3
                t += rng.randint(1, 4)
                pid += 3
            continue
        lines.append((t, order, f'{ctime(t)} [pid {pid}] CONNECT: Client "{s.ip}"'))
        order += 1
        t_login = t + rng.randint(1, 2)
        lines.append((t_login, order, f'{ctime(t_login)} [pid {pid - 1}] [{s.user}] OK LOGIN: Client "{s.ip}"'))
        order += 1
        child = pid + 1
        for op in s.ops:
            head = f'{ctime(op.t)} [pid {child}] [{s.user}] {"OK" if op.ok else "FAIL"} {op.op}: Client "{s.ip}", '
            if op.op in ("UPLOAD", "DOWNLOAD"):
                if op.ok:
                    line = head + f'"{op.path}", {op.size} bytes, {_rate(op.rate)}'
                else:
                    line = head + f'"{op.path}", 0.00Kbyte/sec'
                secs = max(1, int(op.size / (op.rate * 1024))) if op.ok else 1
                direction = "i" if op.op == "UPLOAD" else "o"
                xfer.append((op.t, order, f"{ctime(op.t)} {secs} {s.ip} {op.size} {op.path} b _ {direction} r "
                                          f"{s.user} ftp 0 * {'c' if op.ok else 'i'}"))
            elif op.op == "RENAME":
                line = head + f'"{op.path} {op.path2}"'
            else:
                line = head + f'"{op.path}"'
            lines.append((op.t, order, line))
            order += 1
    for t, _, line in sorted(lines):
        vs.add(line, t)
    for t, _, line in sorted(xfer):
        xf.add(line, t)
    return vs, xf
