"""``report.html``: the report model rendered as one self-contained HTML file.

One file that opens offline and loads nothing: the CSS is inline, the figures are embedded as PNG
``data:`` URIs, there is no link and no external font, and one script (``filters.js``: search
and filters over the analyst's part, complete without it) allowed by its SHA-256 in the
Content-Security-Policy, which forbids anything else (no other script, no eval, no network). The
script only reads text and shows or hides elements. Every text from the evidence is
attacker-controlled, so:

* every template expression is HTML-escaped (Jinja2 autoescape for all templates; nothing is
  marked safe but the tool's own two constants, the policy and the script);
* control and format characters (C0/C1 controls but newline and tab, U+2028/U+2029, bidirectional
  overrides, zero-width characters, lone surrogates) are shown as ``\\xNN``/``\\uNNNN`` escapes, so
  nothing invisible can reorder or hide what the analyst reads;
* no attribute takes its value from the evidence, and nothing from it becomes a link.

The same model gives the same bytes: no clock is read here.
"""

from __future__ import annotations

import base64
import hashlib
import os
import unicodedata
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

REPORT_FILE = "report.html"
TEMPLATES = Path(__file__).resolve().parent / "templates"
# the report's one script, written into the page as it is (the tool's own constant) and allowed by its hash
SCRIPT = (Path(__file__).resolve().parent / "filters.js").read_text(encoding="utf-8")
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
# written as it is into the template's first <meta> (a constant, not a value: no escaping to undo)
CSP = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src '{SCRIPT_HASH}'; "
       "base-uri 'none'; form-action 'none'")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_INVISIBLE = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))
_SEVERITY_CLASS = {"critical": "critical", "high": "high", "medium": "medium", "low": "low", "info": "info",
                   "strength": "strength"}  # (the readiness audit's good practice)
_CONFIDENCE_CLASS = {"high": "ok", "medium": "warn", "low": "bad"}


def visible(text: str) -> str:
    """``text`` with every control or format character (newline and tab excepted) as an escape."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in "\n\t" or unicodedata.category(ch) not in _INVISIBLE:
            out.append(ch)
            continue
        code = ord(ch)
        out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def _finalize(value):
    """Applied to every ``{{ … }}`` before escaping: None as a dash, text made visible. Markup is
    only ever a macro's output here (made of escaped values), so it passes as it is."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return visible(str(value))


def _number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      finalize=_finalize, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = _number
    env.filters["severity_class"] = lambda v: _SEVERITY_CLASS.get(v, "info")
    env.filters["confidence_class"] = lambda v: _CONFIDENCE_CLASS.get(v, "bad")
    return env


def png_data_uri(path: str | os.PathLike) -> str | None:
    """A PNG file as a ``data:`` URI; None when it is missing or not a PNG (nothing else is embedded)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_MAGIC):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def render(model: dict) -> str:
    images = {}
    for host in model["coverage"]["hosts"]:
        for figure in host.get("figures") or []:
            images[figure["png"]] = png_data_uri(figure["png"])
    text = _environment().get_template("report.html.j2").render(model=model, images=images, csp=Markup(CSP),
                                                               script=Markup(SCRIPT))
    if f'content="{CSP}"' not in text[:600]:  # the template and this module must agree
        raise RuntimeError("the report template lost its Content-Security-Policy")
    if text.count("<script>") != 1 or f"<script>{SCRIPT}</script>" not in text:
        raise RuntimeError("the report's script is not the one its Content-Security-Policy allows")
    return text


def write_report(model: dict, case_dir: Path) -> Path:
    """``CASE_DIR/report.html``, replaced whole (never left half-written)."""
    path = Path(case_dir) / REPORT_FILE
    tmp = path.with_name(REPORT_FILE + ".tmp")
    tmp.write_text(render(model), encoding="utf-8", newline="\n")
    tmp.replace(path)
    return path
