"""The pages' HTML: Jinja2 templates (`ledger/web/templates/`, autoescaped) in Chinese first, English with
`?lang=en`, from the message catalogs `ledger/web/messages/{zh-CN,en}.json` (the same keys in both).

Every page is sent with a Content-Security-Policy that lets it load, run and connect to nothing but the service's
own origin (no inline script or style: data a page's script needs travels as a JSON block, never executed), and
the page's data block for its ES module (`/static/js/pages/`).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from ledger.projections.cases import yuan as cases_yuan

WEB = Path(__file__).resolve().parent.parent / "web"
LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""Nothing from another origin, no inline code: what the pages load, run and send stays on the service."""
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}


@cache
def catalog(language: str) -> dict[str, str]:
    """The messages of one language, by key."""
    messages: dict[str, str] = json.loads((WEB / "messages" / f"{language}.json").read_text(encoding="utf-8"))
    return messages


def language_of(requested: str | None) -> str:
    """The page's language: English when asked for (`en`), else Chinese."""
    return "en" if requested is not None and requested.lower().startswith("en") else DEFAULT_LANGUAGE


def yuan(fen: int | None) -> str:
    """Integer fen shown as yuan (the disclosure's own formatting), a dash when there is no amount."""
    return "–" if fen is None else cases_yuan(fen)


def page_data(data: dict[str, Any]) -> str:
    """A JSON block safe inside `<script type="application/json">`: no `<` can end it."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


@cache
def environment() -> Environment:
    """The templates, autoescaped, failing on an undefined name rather than printing nothing."""
    env = Environment(loader=FileSystemLoader(WEB / "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["yuan"] = yuan
    return env


def render(template: str, language: str, status: int = 200, script: str | None = None,
           data: dict[str, Any] | None = None, **context: Any) -> HTMLResponse:
    """A page in `language`: the template with `t(key)` for its messages, links that keep the language (`href`),
    the page's module `script` and its `data` block."""
    messages = catalog(language)

    def t(key: str, **values: Any) -> str:
        return messages[key].format(**values) if values else messages[key]

    def href(path: str) -> str:
        if language == DEFAULT_LANGUAGE:
            return path
        return f"{path}{'&' if '?' in path else '?'}lang={language}"

    other = "en" if language == DEFAULT_LANGUAGE else DEFAULT_LANGUAGE
    body = environment().get_template(template).render(
        t=t, href=href, messages=messages, lang=language, other_language=other, script=script,
        data=page_data({"lang": language, "messages": messages, **(data or {})}), **context)
    return HTMLResponse(body, status_code=status, headers=HEADERS)
