"""The console's pages: plain HTML strings, Vietnamese, readable on a 390 px phone.

Every value that comes from data goes through `_e` (html.escape, quotes too): citizen
text is hostile. Forms that change something carry the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape

from bot.console_accounts import ConsoleUser
from bot.handoff import HandoffTexts
from bot.store import (
    ContextLine,
    Invite,
    MessageRecord,
    Note,
    NoteKind,
    Team,
    Ticket,
    TicketStatus,
    Volunteer,
)

CSRF_FIELD = "csrf"
STATUS_WORDS = {
    TicketStatus.WAITING: "Đang chờ",
    TicketStatus.CLAIMED: "Đang hỗ trợ",
    TicketStatus.CLOSED: "Đã đóng",
}
_NOTE_WORDS = {
    NoteKind.NOTE: "Ghi chú",
    NoteKind.TRANSFER: "Chuyển lại",
    NoteKind.RETURNED: "Trả về hàng chờ (không trả lời)",
    NoteKind.VISIT: "Cần đến tận nơi",
    NoteKind.CLOSED: "Đóng",
}
_CHANNEL_WORDS = {
    "telegram": "Telegram",
    "zalo": "Zalo",
    "web": "Web chat",
    "console": "chỉ bảng điều khiển",
}

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#1b1b1b;background:#f4f5f7}
header{background:#0b5394;color:#fff;padding:.5rem .75rem;display:flex;flex-wrap:wrap;
gap:.25rem .75rem;align-items:center}
header a,header button{color:#fff;text-decoration:none;font-weight:600}
header .who{margin-left:auto;font-size:.9rem;opacity:.9}
header form{display:inline;margin:0}
header button{background:none;border:1px solid #fff;border-radius:6px;padding:.2rem .5rem;
font-size:.9rem;width:auto;margin:0}
main{max-width:48rem;margin:0 auto;padding:.75rem}
h1{font-size:1.3rem;margin:.25rem 0 .75rem}
h2{font-size:1.1rem;margin:1.25rem 0 .5rem}
.card{background:#fff;border-radius:8px;padding:.75rem;margin:0 0 .75rem;
box-shadow:0 1px 2px rgba(0,0,0,.08);overflow-wrap:anywhere}
.card a.title{font-weight:600}
.meta{color:#555;font-size:.9rem}
.tag{display:inline-block;border-radius:4px;padding:0 .35rem;font-size:.85rem;
background:#e8eef6}
.tag.waiting{background:#fde8c8}.tag.claimed{background:#d7f0dc}.tag.closed{background:#e4e4e4}
dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem .75rem;margin:0}
dt{color:#555}dd{margin:0;overflow-wrap:anywhere}
.line{padding:.35rem .5rem;border-radius:6px;margin:.25rem 0;white-space:pre-wrap;
overflow-wrap:anywhere}
.line.in{background:#eef3fb}.line.out{background:#f1f1f1}.line b{font-weight:600}
label{display:block;font-weight:600;margin:.5rem 0 .2rem}
input,select,textarea{width:100%;font:inherit;padding:.55rem;border:1px solid #999;
border-radius:6px;background:#fff}
textarea{min-height:6rem}
button{font:inherit;font-weight:600;padding:.6rem 1rem;border:0;border-radius:6px;
background:#0b5394;color:#fff;margin:.5rem 0 0;width:100%;min-height:44px}
button.secondary{background:#5f6b7a}button.danger{background:#a61c1c}
.flash{padding:.6rem .75rem;border-radius:6px;margin:0 0 .75rem;background:#d7f0dc}
.flash.error{background:#fbdada}
.filters{display:flex;flex-wrap:wrap;gap:.5rem}.filters>*{flex:1 1 9rem}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}.row>*{flex:1 1 10rem}
.svg{overflow-x:auto;background:#fff}.svg svg{max-width:100%;height:auto}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;padding:.5rem;
border-radius:6px;font-size:.85rem}
code.big{font-size:1.3rem;letter-spacing:.1rem}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


@dataclass(frozen=True)
class Flash:
    text: str
    error: bool = False


class Clock:
    """Times as the volunteers read them: local time, waits in minutes."""

    def __init__(self, zone: tzinfo, now: datetime) -> None:
        self.zone = zone
        self.now = now

    def at(self, when: datetime | None) -> str:
        return "-" if when is None else f"{when.astimezone(self.zone):%H:%M %d/%m/%Y}"

    def waited(self, since: datetime) -> str:
        minutes = max(0, int((self.now - since).total_seconds() // 60))
        if minutes < 60:
            return f"{minutes} phút"
        hours, rest = divmod(minutes, 60)
        return f"{hours} giờ {rest} phút" if rest else f"{hours} giờ"


# ---------------------------------------------------------------- layout


def layout(title: str, body: str, *, user: ConsoleUser | None, flash: Flash | None = None) -> str:
    nav = ""
    if user is not None:
        links = ['<a href="/console/queue">Hàng chờ</a>']
        if user.is_coordinator:
            links.append('<a href="/console/volunteers">Tình nguyện viên</a>')
        links.append('<a href="/console/flows">Quy trình</a>')
        role = "điều phối" if user.is_coordinator else "tình nguyện viên"
        nav = (
            "".join(links)
            + f'<span class="who">{_e(user.volunteer.name)} ({role})</span>'
            + post_form("/console/logout", user.csrf_token, "", "Đăng xuất", inline=True)
        )
    else:
        nav = "<strong>Bảng điều khiển tình nguyện</strong>"
    shown = ""
    if flash is not None:
        css = "flash error" if flash.error else "flash"
        shown = f'<p class="{css}" role="status">{_e(flash.text)}</p>'
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)} · citizen-bot</title><style>{_CSS}</style></head>"
        f"<body><header>{nav}</header><main>{shown}<h1>{_e(title)}</h1>{body}</main>"
        "</body></html>"
    )


def post_form(
    action: str,
    csrf: str,
    fields: str,
    button: str,
    *,
    css: str = "",
    inline: bool = False,
) -> str:
    style = ' style="display:inline"' if inline else ""
    klass = f' class="{css}"' if css else ""
    return (
        f'<form method="post" action="{_e(action)}"{style}>'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{_e(csrf)}">'
        f'{fields}<button type="submit"{klass}>{_e(button)}</button></form>'
    )


# ---------------------------------------------------------------- sign in


def login_page(*, csrf: str, login: str = "", flash: Flash | None = None) -> str:
    body = (
        '<form method="post" action="/console/login" class="card">'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{_e(csrf)}">'
        '<label for="login">Tên đăng nhập (hoặc mã số)</label>'
        f'<input id="login" name="login" autocomplete="username" required value="{_e(login)}">'
        '<label for="password">Mật khẩu</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<button type="submit">Đăng nhập</button></form>'
    )
    return layout("Đăng nhập", body, user=None, flash=flash)


def message_page(title: str, text: str, *, user: ConsoleUser | None) -> str:
    body = f'<p class="card">{_e(text)}</p><p><a href="/console/queue">Về hàng chờ</a></p>'
    return layout(title, body, user=user)


# ---------------------------------------------------------------- queue


def queue_page(
    tickets: Sequence[Ticket],
    *,
    user: ConsoleUser,
    texts: HandoffTexts,
    teams: Mapping[int, Team],
    clock: Clock,
    team_filter: str,
    status_filter: str,
    inbox: Sequence[str] = (),
    flash: Flash | None = None,
) -> str:
    parts: list[str] = [_availability(user)]
    if inbox:
        lines = "".join(f'<div class="line in">{_e(text)}</div>' for text in inbox)
        parts.append(f'<section class="card"><h2>Tin nhắn mới</h2>{lines}</section>')
    if user.is_coordinator:
        parts.append(_filters(teams, team_filter, status_filter))
    waiting = [t for t in tickets if t.status == TicketStatus.WAITING]
    others = [t for t in tickets if t.status != TicketStatus.WAITING]
    parts.append(f"<h2>Đang chờ ({len(waiting)})</h2>")
    parts.append(
        "".join(_ticket_card(t, texts, teams, clock) for t in waiting)
        or '<p class="meta">Không có ai đang chờ.</p>'
    )
    if others or status_filter in ("", "open", "claimed"):
        title = "Đang hỗ trợ" if status_filter in ("", "open", "claimed") else "Khác"
        parts.append(f"<h2>{title} ({len(others)})</h2>")
        parts.append(
            "".join(_ticket_card(t, texts, teams, clock) for t in others)
            or '<p class="meta">Không có yêu cầu nào.</p>'
        )
    return layout("Hàng chờ", "".join(parts), user=user, flash=flash)


def _availability(user: ConsoleUser) -> str:
    """On duty or not, and the button that changes it (/on and /off in Telegram)."""
    on = user.volunteer.available
    state = "Bạn đang trực." if on else "Bạn đang tạm nghỉ."
    button = "Tạm nghỉ" if on else "Bắt đầu trực"
    form = post_form(
        "/console/availability",
        user.csrf_token,
        f'<input type="hidden" name="available" value="{"0" if on else "1"}">',
        button,
        css="secondary",
    )
    return f'<section class="card" id="availability"><span>{state}</span>{form}</section>'


def _filters(teams: Mapping[int, Team], team_filter: str, status_filter: str) -> str:
    team_options = [("", "Mọi đội"), ("none", "Cả tỉnh (chưa có đội)")]
    team_options += [(str(t.id), t.name) for t in teams.values()]
    status_options = [
        ("open", "Chưa đóng"),
        ("waiting", "Đang chờ"),
        ("claimed", "Đang hỗ trợ"),
        ("closed", "Đã đóng"),
    ]
    return (
        '<form method="get" action="/console/queue" class="card filters">'
        '<div><label for="team">Đội</label>'
        f'<select id="team" name="team">{_options(team_options, team_filter)}</select></div>'
        '<div><label for="status">Trạng thái</label>'
        f'<select id="status" name="status">{_options(status_options, status_filter or "open")}'
        '</select></div><div><button type="submit" class="secondary">Lọc</button></div></form>'
    )


def _options(options: Iterable[tuple[str, str]], chosen: str) -> str:
    return "".join(
        f'<option value="{_e(value)}"{" selected" if value == chosen else ""}>{_e(label)}</option>'
        for value, label in options
    )


def _ticket_card(
    ticket: Ticket, texts: HandoffTexts, teams: Mapping[int, Team], clock: Clock
) -> str:
    status = ticket.status
    known = teams.get(ticket.team_id) if ticket.team_id is not None else None
    team = known.name if known is not None else "Cả tỉnh"
    if status == TicketStatus.WAITING:
        when = f"chờ {clock.waited(ticket.waiting_since)}"
    elif status == TicketStatus.CLAIMED:
        when = f"nhận lúc {clock.at(ticket.claimed_at)}"
    else:
        when = f"đóng lúc {clock.at(ticket.closed_at)}"
    where = ticket.flow_id or texts.text("where_none")
    return (
        f'<div class="card" data-ticket="{ticket.id}">'
        f'<a class="title" href="/console/tickets/{ticket.id}">Yêu cầu #{ticket.id}</a> '
        f'<span class="tag {status.value}">{_e(STATUS_WORDS[status])}</span> '
        f'<span class="meta">{_e(when)}</span><br>'
        f'<span class="meta">{_e(texts.reason(ticket.reason))} · {_e(where)} · {_e(team)}'
        f"</span></div>"
    )


# ---------------------------------------------------------------- ticket


@dataclass(frozen=True)
class TicketView:
    ticket: Ticket
    messages: Sequence[MessageRecord]
    notes: Sequence[Note]
    names: Mapping[int, str]  # volunteer names by id
    team: Team | None
    commune: str | None


def ticket_page(
    view: TicketView,
    *,
    user: ConsoleUser,
    texts: HandoffTexts,
    clock: Clock,
    flash: Flash | None = None,
) -> str:
    t = view.ticket
    me = user.volunteer
    holder = view.names.get(t.volunteer_id, "-") if t.volunteer_id is not None else "-"
    where = t.flow_id or texts.text("where_none")
    facts = [
        ("Trạng thái", STATUS_WORDS[t.status]),
        ("Lý do", texts.reason(t.reason)),
        ("Quy trình", where),
        ("Bước", t.step_id or "-"),
        ("Ngôn ngữ", t.lang),
        ("Xã/phường", view.commune or texts.text("commune_unknown")),
        ("Kênh", _CHANNEL_WORDS.get(t.channel, t.channel)),
        ("Đội", view.team.name if view.team else "Cả tỉnh"),
        ("Mở lúc", clock.at(t.created_at)),
    ]
    if t.status == TicketStatus.WAITING:
        facts.append(("Đã chờ", clock.waited(t.waiting_since)))
    else:
        facts.append(("Người nhận", holder))
    if t.status == TicketStatus.CLOSED:
        reason = texts.close_reason(t.close_reason) if t.close_reason else "-"
        facts.append(("Đóng lúc", f"{clock.at(t.closed_at)} ({reason})"))
        facts.append(("Điểm", f"{t.rating}/5" if t.rating else "chưa chấm"))
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    parts = [f'<section class="card"><dl>{dl}</dl></section>']
    actions = _actions(t, user, texts)
    if t.status == TicketStatus.WAITING:
        parts.append(actions)  # claim first; the chat follows
    parts.append("<h2>Trước khi nhờ người giúp</h2>")
    parts.append(_context(t.context, texts))
    parts.append("<h2>Từ khi có yêu cầu</h2>")
    parts.append(_messages(view.messages, texts))
    if t.status != TicketStatus.WAITING:
        parts.append(actions)  # the reply box under the last message, as in a chat
    parts.append(f"<h2>Ghi chú ({len(view.notes)})</h2>")
    for note in view.notes:
        who = view.names.get(note.volunteer_id, "Bot") if note.volunteer_id else "Bot"
        kind = _NOTE_WORDS.get(note.kind, note.kind.value)
        parts.append(
            f'<div class="card"><span class="meta">{_e(kind)} · {_e(who)} · '
            f"{_e(clock.at(note.created_at))}</span>"
            f'<div class="line">{_e(note.text) or "-"}</div></div>'
        )
    holds = t.volunteer_id == me.id
    if holds or user.is_coordinator:
        parts.append(
            post_form(
                f"/console/tickets/{t.id}/note",
                user.csrf_token,
                '<label for="note">Thêm ghi chú (chỉ tình nguyện viên đọc được)</label>'
                '<textarea id="note" name="text" maxlength="2000" required></textarea>',
                "Lưu ghi chú",
                css="secondary",
            )
        )
    return layout(f"Yêu cầu #{t.id}", "".join(parts), user=user, flash=flash)


def _actions(t: Ticket, user: ConsoleUser, texts: HandoffTexts) -> str:
    me = user.volunteer
    csrf = user.csrf_token
    if t.status == TicketStatus.WAITING:
        claim = post_form(f"/console/tickets/{t.id}/claim", csrf, "", texts.button("claim"))
        if not user.is_coordinator:
            return claim
        close = post_form(
            f"/console/tickets/{t.id}/close",
            csrf,
            "",
            "Đóng yêu cầu (đã lo ở nơi khác)",
            css="danger",
        )
        return f'<section class="card">{claim}{close}</section>'
    if t.status == TicketStatus.CLAIMED and t.volunteer_id == me.id:
        reply = post_form(
            f"/console/tickets/{t.id}/reply",
            csrf,
            '<label for="reply">Trả lời người dân</label>'
            '<textarea id="reply" name="text" maxlength="4000" required></textarea>',
            "Gửi cho người dân",
        )
        transfer = post_form(
            f"/console/tickets/{t.id}/transfer",
            csrf,
            '<label for="transfer">Nhờ bạn khác (ghi lại đã giúp đến đâu)</label>'
            '<input id="transfer" name="text" maxlength="2000">',
            "Trả về hàng chờ",
            css="secondary",
        )
        visit = post_form(
            f"/console/tickets/{t.id}/visit",
            csrf,
            '<label for="visit">Cần đến tận nơi (ghi chú cho đội)</label>'
            '<input id="visit" name="text" maxlength="2000">',
            "Đề nghị hỗ trợ tận nơi",
            css="secondary",
        )
        close = post_form(
            f"/console/tickets/{t.id}/close", csrf, "", "Kết thúc hỗ trợ", css="danger"
        )
        return f'<section class="card">{reply}{transfer}{visit}{close}</section>'
    if t.status == TicketStatus.CLAIMED and user.is_coordinator:
        transfer = post_form(
            f"/console/tickets/{t.id}/transfer",
            csrf,
            '<label for="transfer">Trả về hàng chờ (ghi lý do)</label>'
            '<input id="transfer" name="text" maxlength="2000">',
            "Trả về hàng chờ",
            css="secondary",
        )
        close = post_form(
            f"/console/tickets/{t.id}/close", csrf, "", "Kết thúc hỗ trợ", css="danger"
        )
        return f'<section class="card">{transfer}{close}</section>'
    return ""


def _context(lines: Sequence[ContextLine], texts: HandoffTexts) -> str:
    labels = {
        "citizen": texts.text("context_citizen"),
        "bot": texts.text("context_bot"),
        "volunteer": texts.text("context_volunteer"),
    }
    shown = [line for line in lines if line.text]
    if not shown:
        return f'<p class="meta">{_e(texts.text("context_empty"))}</p>'
    return "".join(
        f'<div class="line {"in" if line.who == "citizen" else "out"}">'
        f"<b>{_e(labels.get(line.who, line.who))}:</b> {_e(line.text)}</div>"
        for line in shown
    )


def _messages(messages: Sequence[MessageRecord], texts: HandoffTexts) -> str:
    if not messages:
        return '<p class="meta">Chưa có tin nhắn nào.</p>'
    citizen, bot = texts.text("context_citizen"), texts.text("context_bot")
    out = []
    for m in messages:
        inbound = m.direction.value == "in"
        text = m.text or (f"[{m.media_kind}]" if m.media_kind else "")
        out.append(
            f'<div class="line {"in" if inbound else "out"}">'
            f"<b>{_e(citizen if inbound else bot)}:</b> {_e(text)}</div>"
        )
    return "".join(out)


# ---------------------------------------------------------------- volunteers


def volunteers_page(
    people: Sequence[Volunteer],
    *,
    user: ConsoleUser,
    teams: Mapping[int, Team],
    clock: Clock,
    invite: Invite | None = None,
    flash: Flash | None = None,
) -> str:
    csrf = user.csrf_token
    parts = []
    if invite is not None:
        team = teams[invite.team_id].name if invite.team_id in teams else str(invite.team_id)
        parts.append(
            '<section class="card"><h2>Mã mời mới</h2>'
            f'<p><code class="big">{_e(invite.code)}</code></p>'
            f'<p class="meta">Đội: {_e(team)}. Hết hạn: {_e(clock.at(invite.expires_at))}.</p>'
            f"<p>Tình nguyện viên gửi cho bot trên Telegram: <code>/join {_e(invite.code)}</code>"
            "</p></section>"
        )
    team_options = [(str(t.id), t.name) for t in teams.values()]
    parts.append(
        post_form(
            "/console/invites",
            csrf,
            '<h2>Tạo mã mời</h2><div class="row">'
            '<div><label for="invite-team">Đội</label>'
            f'<select id="invite-team" name="team_id">{_options(team_options, "")}</select></div>'
            '<div><label for="new-team">Hoặc đội mới</label>'
            '<input id="new-team" name="new_team" maxlength="100"></div>'
            '<div><label for="invite-role">Vai trò</label><select id="invite-role" name="role">'
            f"{_options([('volunteer', 'Tình nguyện viên'), ('coordinator', 'Điều phối')], '')}"
            "</select></div></div>",
            "Tạo mã mời",
        ).replace("<form ", '<form class="card" ', 1)
    )
    parts.append(f"<h2>Danh sách ({len(people)})</h2>")
    for v in people:
        team = teams[v.team_id].name if v.team_id in teams else str(v.team_id)
        state = "đã khóa" if v.disabled else ("đang trực" if v.available else "nghỉ")
        role = "điều phối" if v.is_coordinator else "tình nguyện viên"
        login = " · có đăng nhập" if v.has_password else ""
        spoken = f" · nói {', '.join(v.languages)}" if v.languages else ""
        move = post_form(
            f"/console/volunteers/{v.id}/move",
            csrf,
            f'<label for="move-{v.id}">Chuyển đội</label>'
            f'<select id="move-{v.id}" name="team_id">'
            f"{_options(team_options, str(v.team_id))}</select>",
            "Chuyển",
            css="secondary",
        )
        disable = (
            ""
            if v.disabled or v.id == user.volunteer.id
            else post_form(f"/console/volunteers/{v.id}/disable", csrf, "", "Khóa", css="danger")
        )
        parts.append(
            f'<div class="card" data-volunteer="{v.id}"><strong>{_e(v.name)}</strong> '
            f'<span class="meta">#{v.id} · {_e(team)} · {_e(role)} · {_e(state)}{login}</span>'
            f'<br><span class="meta">{_e(_CHANNEL_WORDS.get(v.channel, v.channel))} · '
            f"hoạt động lần cuối {_e(clock.at(v.last_active_at))}{_e(spoken)}</span>"
            f"{move}{disable}</div>"
        )
    return layout("Tình nguyện viên", "".join(parts), user=user, flash=flash)


# ---------------------------------------------------------------- flows


def flows_page(flows: Sequence[tuple[str, str]], *, user: ConsoleUser) -> str:
    items = "".join(
        f'<li class="card"><a href="/console/flows/{_e(fid)}">{_e(title)}</a> '
        f'<span class="meta">{_e(fid)}</span></li>'
        for fid, title in flows
    )
    body = f'<ul style="list-style:none;padding:0">{items}</ul>' if items else "<p>Chưa có.</p>"
    return layout("Quy trình", body, user=user)


def flow_page(flow_id: str, title: str, *, svg: str | None, mermaid: str, user: ConsoleUser) -> str:
    if svg is not None:
        # bot.flow.graph.to_svg escapes every flow text it draws: markup, not data. A
        # standalone document's XML declaration has no place inside HTML.
        if svg.startswith("<?xml"):
            svg = svg.split("?>", 1)[-1]
        picture = f'<div class="svg card">{svg}</div>'
    else:
        picture = (
            '<p class="meta">Sơ đồ dạng Mermaid (hình vẽ chưa có):</p>'
            f'<pre class="mermaid">{_e(mermaid)}</pre>'
        )
    back = '<p><a href="/console/flows">Mọi quy trình</a></p>'
    body = f'<p class="meta">{_e(flow_id)}</p>{picture}{back}'
    return layout(title, body, user=user)
