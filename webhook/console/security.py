"""Cookies, CSRF and form reading for the console.

Session cookie: the random token, HttpOnly, SameSite=Lax, Path=/console, Secure when
PUBLIC_BASE_URL is https, Max-Age the session's life (the database has the last word).
CSRF: every POST form carries the session's token, compared in constant time; the
sign-in form, before any session, carries a random token that must equal a cookie set
with the form (double submit).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs

from fastapi import Request, Response

from webhook.console.views import CSRF_FIELD

SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"
_PATH = "/console"
# Forms are a few fields and one message; anything bigger is not ours.
MAX_FORM_BYTES = 64 * 1024


class FormTooLarge(Exception):
    pass


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict (first value of each field). No multipart: the
    console has no uploads."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {key: values[0] for key, values in parsed.items() if values}


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; a missing or empty token never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def csrf_ok(form: dict[str, str], expected: str) -> bool:
    return same_token(form.get(CSRF_FIELD), expected)


def set_session_cookie(response: Response, token: str, *, max_age: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path=_PATH,
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path=_PATH, httponly=True, samesite="lax", secure=secure)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def set_login_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path=_PATH,
        httponly=True,
        samesite="lax",
        secure=secure,
    )
