"""The console's routes under /console. Thin: who is signed in, CSRF, then
webhook/console/desk.py for what they may see and do, views.py for the HTML.

    GET  /console/login, POST /console/login, POST /console/logout
    GET  /console/queue?team=&status=           the queue
    GET  /console/tickets/{id}                  a ticket
    POST /console/tickets/{id}/claim|reply|note|transfer|visit|close
    POST /console/availability                  on duty or not (/on, /off)
    GET  /console/volunteers                    coordinators: volunteers, invites
    POST /console/volunteers/{id}/disable|move, POST /console/invites
    GET  /console/flows, /console/flows/{id}    the flows, drawn

Signed out: GET redirects to the sign-in page, POST gets 403. A POST whose CSRF token is
missing or wrong gets 403 and changes nothing. A ticket the user may not see is 404,
the same page as a ticket that does not exist.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from bot.communes import COMMUNES_FILE, Communes, load_communes
from bot.console_accounts import ConsoleAccounts, ConsoleUser, SignInOutcome
from bot.conversation import ConversationService
from bot.errors import CitizenBotError
from bot.flow.graph import mermaid
from bot.flow.model import Flow, pick
from bot.handoff import Outcome, TicketResult
from bot.helpdesk import HelpDesk
from bot.store import Invite, Role, Team, TeamKind, TicketStatus
from bot.store.types import utcnow
from webhook.console import views
from webhook.console.desk import ConsoleDesk, Done
from webhook.console.security import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    FormTooLarge,
    clear_session_cookie,
    csrf_ok,
    new_token,
    read_form,
    same_token,
    set_login_cookie,
    set_session_cookie,
)
from webhook.console.settings import ConsoleSettings, get_console_settings
from webhook.console.views import Clock, Flash

log = logging.getLogger(__name__)
router = APIRouter(prefix="/console", include_in_schema=False)

_STATUSES = {
    "open": (TicketStatus.WAITING, TicketStatus.CLAIMED),
    "waiting": (TicketStatus.WAITING,),
    "claimed": (TicketStatus.CLAIMED,),
    "closed": (TicketStatus.CLOSED,),
}
# What a finished action says (?m=…); refusals use the handoff texts (Outcome values).
_DONE_WORDS = {
    "claimed": "Bạn đã nhận hỗ trợ yêu cầu này. Người dân đã được báo.",
    "sent": "Đã gửi cho người dân.",
    "noted": "Đã lưu ghi chú.",
    "closed": "Đã kết thúc hỗ trợ. Người dân được mời chấm điểm từ 1 đến 5.",
    "closed_waiting": "Đã đóng yêu cầu. Người dân đã được báo.",
    "transferred": "Đã trả yêu cầu về hàng chờ để bạn khác nhận.",
    "visit": "Đã báo đội cần hỗ trợ tận nơi. Người dân đã được báo.",
    "on": "Bạn đang trực. Yêu cầu mới sẽ hiện ở hàng chờ.",
    "off": 'Bạn đã tạm nghỉ. Bấm "Bắt đầu trực" khi sẵn sàng.',
    "disabled": "Đã khóa tình nguyện viên.",
    "moved": "Đã chuyển đội.",
    "empty_reply": "Tin trả lời trống hoặc dài quá 4000 ký tự.",
    "gone": "Yêu cầu này vừa có người khác nhận, hoặc đã đóng.",
}
_NOT_FOUND = "Không tìm thấy yêu cầu này."
# Refusals whose handoff texts name Telegram commands (/done, /note), in console words.
_CONSOLE_REFUSALS = {
    Outcome.BUSY: "Bạn đang hỗ trợ yêu cầu #{ticket_id}. Bạn kết thúc hoặc trả yêu cầu đó "
    "về hàng chờ trước khi nhận yêu cầu mới.",
    Outcome.EMPTY: "Bạn nhập nội dung trước khi lưu.",
}


# ---------------------------------------------------------------- plumbing


@dataclass(frozen=True)
class _Ctx:
    """A request's signed-in user with what the console needs."""

    service: ConversationService
    desk: HelpDesk
    accounts: ConsoleAccounts
    settings: ConsoleSettings
    user: ConsoleUser

    @property
    def console(self) -> ConsoleDesk:
        return ConsoleDesk(self.desk, self.accounts, self.user)

    def clock(self) -> Clock:
        return Clock(self.desk.handoff.policy.hours.zone, utcnow())


def _settings(request: Request) -> ConsoleSettings:
    given = getattr(request.app.state, "console_settings", None)
    return given if isinstance(given, ConsoleSettings) else get_console_settings()


def _accounts(request: Request) -> tuple[ConversationService, HelpDesk, ConsoleAccounts] | None:
    service: ConversationService | None = getattr(request.app.state, "service", None)
    if service is None or service.desk is None:
        return None
    desk = service.desk
    return (
        service,
        desk,
        ConsoleAccounts(service.store, desk.handoff, policy=_settings(request).policy),
    )


def _context(request: Request) -> _Ctx | None:
    found = _accounts(request)
    if found is None:
        return None
    service, desk, accounts = found
    user = accounts.user(request.cookies.get(SESSION_COOKIE, ""))
    if user is None:
        return None
    return _Ctx(service, desk, accounts, _settings(request), user)


def _html(body: str, status: int = 200) -> HTMLResponse:
    response = HTMLResponse(body, status_code=status)
    # Pages hold masked but personal conversations: never cache, never frame.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _unavailable() -> HTMLResponse:
    text = "Chức năng hỗ trợ tình nguyện chưa được bật trên máy chủ này."
    return _html(views.message_page("Chưa sẵn sàng", text, user=None), 503)


def _forbidden(user: ConsoleUser | None, text: str = "Yêu cầu không hợp lệ.") -> HTMLResponse:
    return _html(views.message_page("Không được phép", text, user=user), 403)


def _not_found(user: ConsoleUser) -> HTMLResponse:
    return _html(views.message_page("Không tìm thấy", _NOT_FOUND, user=user), 404)


async def _posted(request: Request, work: Callable[[_Ctx, dict[str, str]], Response]) -> Response:
    """A POST: signed in, CSRF token right, then `work` in a thread."""
    try:
        form = await read_form(request)
    except FormTooLarge:
        return _html(views.message_page("Quá lớn", "Nội dung gửi quá lớn.", user=None), 413)
    ctx = await run_in_threadpool(_context, request)
    if ctx is None:
        return _forbidden(None, "Bạn cần đăng nhập lại.")
    if not csrf_ok(form, ctx.user.csrf_token):
        return _forbidden(ctx.user, "Phiên làm việc không hợp lệ. Bạn tải lại trang rồi thử lại.")
    response = await run_in_threadpool(work, ctx, form)
    _wake_senders(request)
    return response


def _wake_senders(request: Request) -> None:
    """Replies were queued: let the messengers' senders look now, not at their next poll."""
    for name in ("telegram", "zalo"):
        runtime: Any = getattr(request.app.state, name, None)
        if runtime is not None:
            runtime.sender.wake()


def _flash(ctx: _Ctx, code: str | None, ticket_id: int | None = None) -> Flash | None:
    if not code:
        return None
    if code in _DONE_WORDS:
        return Flash(_DONE_WORDS[code], error=code in ("empty_reply", "gone"))
    try:
        outcome = Outcome(code)
    except ValueError:
        return None
    handoff = ctx.desk.handoff
    ticket = handoff.get_ticket(ticket_id) if ticket_id is not None else None
    holder = None
    if ticket is not None and ticket.volunteer_id is not None:
        holder = handoff.get_volunteer(ticket.volunteer_id)
    other = None
    if outcome == Outcome.BUSY:
        other = handoff.claimed_ticket_of_volunteer(ctx.user.volunteer.id)
    if outcome in _CONSOLE_REFUSALS:
        shown = other.id if other is not None else ""
        return Flash(_CONSOLE_REFUSALS[outcome].format(ticket_id=shown), error=True)
    text = ctx.desk.texts.refusal(TicketResult(outcome, ticket, holder=holder, other=other))
    return Flash(text, error=True) if text else None


# ---------------------------------------------------------------- sign in and out


@router.get("")
def home() -> Response:
    return _to("/console/queue")


@router.get("/login")
def login_form(request: Request) -> Response:
    if _context(request) is not None:
        return _to("/console/queue")
    return _login_page(request)


def _login_page(
    request: Request, *, login: str = "", flash: Flash | None = None, status: int = 200
) -> Response:
    token = new_token()
    response = _html(views.login_page(csrf=token, login=login, flash=flash), status)
    set_login_cookie(response, token, secure=_settings(request).secure_cookie)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    try:
        form = await read_form(request)
    except FormTooLarge:
        return _forbidden(None)
    if not same_token(form.get(views.CSRF_FIELD), request.cookies.get(LOGIN_COOKIE)):
        return _forbidden(None, "Phiên đăng nhập không hợp lệ. Bạn tải lại trang rồi thử lại.")
    found = await run_in_threadpool(_accounts, request)
    if found is None:
        return _unavailable()
    accounts = found[2]
    name, password = form.get("login", "").strip(), form.get("password", "")
    # The address uvicorn saw: a trusted proxy's X-Forwarded-For (FORWARDED_ALLOW_IPS).
    client = request.client.host if request.client is not None else None
    result = await run_in_threadpool(accounts.sign_in, name, password, client=client)
    settings = _settings(request)
    if result.outcome == SignInOutcome.OK and result.token is not None:
        response = _to("/console/queue")
        max_age = int(settings.policy.session_ttl.total_seconds())
        set_session_cookie(response, result.token, max_age=max_age, secure=settings.secure_cookie)
        response.delete_cookie(
            LOGIN_COOKIE,
            path="/console",
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookie,
        )
        return response
    if result.outcome == SignInOutcome.LOCKED and result.locked_until is not None:
        zone = found[1].handoff.policy.hours.zone
        until = f"{result.locked_until.astimezone(zone):%H:%M}"
        text = f"Đăng nhập sai quá nhiều lần. Bạn thử lại sau {until}."
        return _login_page(request, login=name, flash=Flash(text, error=True), status=429)
    text = "Tên đăng nhập hoặc mật khẩu không đúng."
    return _login_page(request, login=name, flash=Flash(text, error=True), status=401)


@router.post("/logout")
async def logout(request: Request) -> Response:
    def work(ctx: _Ctx, form: dict[str, str]) -> Response:
        ctx.accounts.sign_out(request.cookies.get(SESSION_COOKIE, ""))
        response = _to("/console/login")
        clear_session_cookie(response, secure=ctx.settings.secure_cookie)
        return response

    return await _posted(request, work)


# ---------------------------------------------------------------- queue and tickets


@router.get("/queue")
def queue(request: Request, team: str = "", status: str = "", m: str = "") -> Response:
    ctx = _context(request)
    if ctx is None:
        return _unavailable() if _accounts(request) is None else _to("/console/login")
    console = ctx.console
    chosen: int | str | None = None
    if ctx.user.is_coordinator:
        chosen = int(team) if team.isdigit() else ("none" if team == "none" else None)
    statuses = _STATUSES.get(status, _STATUSES["open"])
    tickets = console.queue(statuses=statuses, team=chosen)
    teams = {t.id: t for t in ctx.desk.handoff.list_teams()}
    page = views.queue_page(
        tickets,
        user=ctx.user,
        texts=ctx.desk.texts,
        teams=teams,
        clock=ctx.clock(),
        team_filter=team if ctx.user.is_coordinator else "",
        status_filter=status if status in _STATUSES else "",
        inbox=console.inbox(),
        flash=_flash(ctx, m),
    )
    return _html(page)


@router.get("/tickets/{ticket_id}")
def ticket(request: Request, ticket_id: int, m: str = "") -> Response:
    ctx = _context(request)
    if ctx is None:
        return _unavailable() if _accounts(request) is None else _to("/console/login")
    console = ctx.console
    found = console.ticket(ticket_id)
    if found is None:
        return _not_found(ctx.user)
    handoff = ctx.desk.handoff
    notes = handoff.notes(found.id)
    ids = {n.volunteer_id for n in notes} | {found.volunteer_id}
    names = {}
    for volunteer_id in ids:
        volunteer = handoff.get_volunteer(volunteer_id) if volunteer_id is not None else None
        if volunteer is not None:
            names[volunteer.id] = volunteer.name
    view = views.TicketView(
        ticket=found,
        messages=console.messages(found),
        notes=notes,
        names=names,
        team=handoff.get_team(found.team_id) if found.team_id is not None else None,
        commune=_commune_name(ctx.service, found.commune_id),
    )
    page = views.ticket_page(
        view,
        user=ctx.user,
        texts=ctx.desk.texts,
        clock=ctx.clock(),
        flash=_flash(ctx, m, ticket_id),
    )
    return _html(page)


def _ticket_action(
    request: Request, ticket_id: int, act: Callable[[ConsoleDesk, dict[str, str]], Done], ok: str
) -> Callable[[_Ctx, dict[str, str]], Response]:
    def work(ctx: _Ctx, form: dict[str, str]) -> Response:
        console = ctx.console
        if console.ticket(ticket_id) is None:
            if ok == "claimed" and console.lost_race(ticket_id):
                return _to("/console/queue?m=gone")
            return _not_found(ctx.user)
        done = act(console, form)
        closed = done.result.ticket
        if done.result.ok and ok == "closed" and closed is not None and closed.volunteer_id is None:
            code = "closed_waiting"  # nobody was helping: no rating is asked
        elif done.result.ok:
            code = ok
        elif done.result.outcome == Outcome.EMPTY and ok == "sent":
            code = "empty_reply"
        else:
            code = done.result.outcome.value
        return _to(f"/console/tickets/{ticket_id}?m={code}")

    return work


@router.post("/tickets/{ticket_id}/claim")
async def claim(request: Request, ticket_id: int) -> Response:
    work = _ticket_action(request, ticket_id, lambda c, f: c.claim(ticket_id), "claimed")
    return await _posted(request, work)


@router.post("/tickets/{ticket_id}/reply")
async def reply(request: Request, ticket_id: int) -> Response:
    work = _ticket_action(
        request, ticket_id, lambda c, f: c.reply(ticket_id, f.get("text", "")), "sent"
    )
    return await _posted(request, work)


@router.post("/tickets/{ticket_id}/note")
async def note(request: Request, ticket_id: int) -> Response:
    work = _ticket_action(
        request, ticket_id, lambda c, f: c.note(ticket_id, f.get("text", "")[:2000]), "noted"
    )
    return await _posted(request, work)


@router.post("/tickets/{ticket_id}/transfer")
async def transfer(request: Request, ticket_id: int) -> Response:
    work = _ticket_action(
        request,
        ticket_id,
        lambda c, f: c.transfer(ticket_id, f.get("text", "")[:2000]),
        "transferred",
    )
    return await _posted(request, work)


@router.post("/tickets/{ticket_id}/visit")
async def visit(request: Request, ticket_id: int) -> Response:
    work = _ticket_action(
        request, ticket_id, lambda c, f: c.visit(ticket_id, f.get("text", "")[:2000]), "visit"
    )
    return await _posted(request, work)


@router.post("/availability")
async def availability(request: Request) -> Response:
    """On duty or not: the console's /on and /off."""

    def work(ctx: _Ctx, form: dict[str, str]) -> Response:
        on = form.get("available") == "1"
        if ctx.console.set_available(on) is None:
            return _forbidden(ctx.user)
        return _to(f"/console/queue?m={'on' if on else 'off'}")

    return await _posted(request, work)


@router.post("/tickets/{ticket_id}/close")
async def close(request: Request, ticket_id: int) -> Response:
    work = _ticket_action(request, ticket_id, lambda c, f: c.close(ticket_id), "closed")
    return await _posted(request, work)


@lru_cache(maxsize=4)
def _communes(path: Path) -> Communes | None:
    try:
        return load_communes(path)
    except (CitizenBotError, OSError):
        return None


def _commune_name(service: ConversationService, commune_id: str | None) -> str | None:
    if commune_id is None:
        return None
    communes = _communes(service.library.knowledge_dir / COMMUNES_FILE)
    unit = communes.unit(commune_id) if communes is not None else None
    return unit.full_name if unit is not None else commune_id


# ---------------------------------------------------------------- volunteers


@router.get("/volunteers")
def volunteers(request: Request, m: str = "") -> Response:
    ctx = _context(request)
    if ctx is None:
        return _unavailable() if _accounts(request) is None else _to("/console/login")
    if not ctx.user.is_coordinator:
        return _forbidden(ctx.user, "Trang này dành cho người điều phối.")
    return _html(_volunteers_page(ctx, flash=_flash(ctx, m)))


def _volunteers_page(ctx: _Ctx, *, invite: Invite | None = None, flash: Flash | None = None) -> str:
    handoff = ctx.desk.handoff
    teams = {t.id: t for t in handoff.list_teams()}
    return views.volunteers_page(
        handoff.list_volunteers(),
        user=ctx.user,
        teams=teams,
        clock=ctx.clock(),
        invite=invite,
        flash=flash,
    )


def _coordinator_action(
    act: Callable[[_Ctx, dict[str, str]], Response],
) -> Callable[[_Ctx, dict[str, str]], Response]:
    def work(ctx: _Ctx, form: dict[str, str]) -> Response:
        if not ctx.user.is_coordinator:
            return _forbidden(ctx.user, "Trang này dành cho người điều phối.")
        return act(ctx, form)

    return work


@router.post("/volunteers/{volunteer_id}/disable")
async def disable(request: Request, volunteer_id: int) -> Response:
    def act(ctx: _Ctx, form: dict[str, str]) -> Response:
        if volunteer_id == ctx.user.volunteer.id:
            return _forbidden(ctx.user, "Bạn không thể tự khóa mình.")
        if ctx.desk.disable(volunteer_id)[0] is None:
            return _html(
                views.message_page("Không tìm thấy", "Không có ai như vậy.", user=ctx.user), 404
            )
        return _to("/console/volunteers?m=disabled")

    return await _posted(request, _coordinator_action(act))


@router.post("/volunteers/{volunteer_id}/move")
async def move(request: Request, volunteer_id: int) -> Response:
    def act(ctx: _Ctx, form: dict[str, str]) -> Response:
        team_id = form.get("team_id", "")
        handoff = ctx.desk.handoff
        if not team_id.isdigit() or handoff.get_team(int(team_id)) is None:
            return _forbidden(ctx.user, "Không có đội này.")
        if handoff.move(volunteer_id, int(team_id)) is None:
            return _html(
                views.message_page("Không tìm thấy", "Không có ai như vậy.", user=ctx.user), 404
            )
        return _to("/console/volunteers?m=moved")

    return await _posted(request, _coordinator_action(act))


@router.post("/invites")
async def invite(request: Request) -> Response:
    def act(ctx: _Ctx, form: dict[str, str]) -> Response:
        handoff = ctx.desk.handoff
        team: Team | None = None
        new_team = " ".join(form.get("new_team", "").split())[:100]
        if new_team:
            team = handoff.find_team(new_team) or handoff.create_team(
                new_team, kind=TeamKind.COMMUNE
            )
        elif form.get("team_id", "").isdigit():
            team = handoff.get_team(int(form["team_id"]))
        if team is None:
            return _forbidden(ctx.user, "Bạn chọn một đội, hoặc nhập tên đội mới.")
        role = Role.COORDINATOR if form.get("role") == "coordinator" else Role.VOLUNTEER
        by = f"console:{ctx.user.volunteer.id}"
        code = handoff.create_invite(team.id, role=role, created_by=by)
        return _html(_volunteers_page(ctx, invite=code))

    return await _posted(request, _coordinator_action(act))


# ---------------------------------------------------------------- flows


def _to_svg() -> Callable[[Flow, str], str] | None:
    """bot.flow.graph.to_svg when it is there. FALLBACK: until it is, flow pages show
    the Mermaid text in a <pre>; once to_svg exists, they show its picture."""
    try:
        graph = importlib.import_module("bot.flow.graph")
    except ImportError:
        return None
    found = getattr(graph, "to_svg", None)
    return found if callable(found) else None


@router.get("/flows")
def flows(request: Request) -> Response:
    ctx = _context(request)
    if ctx is None:
        return _unavailable() if _accounts(request) is None else _to("/console/login")
    current = ctx.service.library.catalog.flows()
    listed = sorted(
        ((fid, pick(flow.title, "vi")) for fid, flow in current.items()), key=lambda x: x[1]
    )
    return _html(views.flows_page(listed, user=ctx.user))


@router.get("/flows/{flow_id}")
def flow(request: Request, flow_id: str) -> Response:
    ctx = _context(request)
    if ctx is None:
        return _unavailable() if _accounts(request) is None else _to("/console/login")
    found = ctx.service.library.catalog.get(flow_id)
    if found is None:
        page = views.message_page("Không tìm thấy", "Không có quy trình này.", user=ctx.user)
        return _html(page, 404)
    draw = _to_svg()
    svg = None
    if draw is not None:
        try:
            svg = draw(found, "vi")
        except Exception:  # a drawing bug must not take the page down: show the text
            log.exception("console: drawing flow %s failed", flow_id)
    page = views.flow_page(
        flow_id, pick(found.title, "vi"), svg=svg, mermaid=mermaid(found), user=ctx.user
    )
    return _html(page)
