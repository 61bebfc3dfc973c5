"""The console over real HTTP (uvicorn on a free port, httpx), on each database:
sign-in, sessions, CSRF, who sees what, and the actions through the handoff domain."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from fastapi import FastAPI

from bot.console_accounts import ConsoleAccounts, ConsolePolicy
from bot.conversation import ConversationService
from bot.messages import Incoming
from bot.store import OutboxStatus, Store, TicketStatus
from bot.store.types import utcnow
from tests.webhook.console.conftest import console_app, served
from tests.webhook.console.world import HOSTILE, PASSWORD, PHONE, World, csrf_of, make_service
from webhook.console.security import LOGIN_COOKIE, SESSION_COOKIE


def sign_in(client: httpx.Client, login: str, password: str = PASSWORD) -> str:
    """Sign in through the form; the session's CSRF token."""
    form = client.get("/console/login")
    assert form.status_code == 200
    response = client.post(
        "/console/login",
        data={"login": login, "password": password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/queue"
    queue = client.get("/console/queue")
    assert queue.status_code == 200
    return csrf_of(queue.text)


def post(client: httpx.Client, path: str, **data: str) -> httpx.Response:
    return client.post(path, data=data, follow_redirects=False)


# ---------------------------------------------------------------- sign in


def test_sign_in_sets_a_safe_cookie_and_shows_the_queue(client: httpx.Client, world: World) -> None:
    form = client.get("/console/login")
    assert form.headers["content-type"].startswith("text/html")
    assert "Đăng nhập" in form.text and 'lang="vi"' in form.text
    response = client.post(
        "/console/login",
        data={"login": "lan", "password": PASSWORD, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    attributes = cookie.lower()
    assert "httponly" in attributes and "samesite=lax" in attributes
    assert "path=/console" in attributes and f"max-age={12 * 3600}" in attributes
    assert "secure" not in attributes  # PUBLIC_BASE_URL is not https here
    queue = client.get("/console/queue")
    assert queue.status_code == 200
    assert "Lan (tình nguyện viên)" in queue.text


def test_the_cookie_is_secure_when_the_public_address_is_https(
    service: ConversationService, world: World
) -> None:
    app = console_app(service, public_base_url="https://bot.example.org")
    with served(app) as client:
        form = client.get("/console/login")
        # A Secure cookie does not travel back over this test's plain http: send it.
        login_cookie = form.headers["set-cookie"].split(";", 1)[0]
        data = {"login": "Lan", "password": PASSWORD, "csrf": csrf_of(form.text)}
        signed = client.post(
            "/console/login", data=data, headers={"cookie": login_cookie}, follow_redirects=False
        )
    assert signed.status_code == 303
    cookies = [c.lower() for c in form.headers.get_list("set-cookie")]
    cookies += [c.lower() for c in signed.headers.get_list("set-cookie")]
    assert any(c.startswith(SESSION_COOKIE) for c in cookies)
    assert all("; secure" in c for c in cookies)


def test_a_wrong_password_or_name_is_refused_alike(client: httpx.Client, world: World) -> None:
    for login, password in (("Lan", "not the password"), ("Nobody", PASSWORD)):
        form = client.get("/console/login")
        response = client.post(
            "/console/login",
            data={"login": login, "password": password, "csrf": csrf_of(form.text)},
            follow_redirects=False,
        )
        assert response.status_code == 401
        assert "Tên đăng nhập hoặc mật khẩu không đúng." in response.text
        assert SESSION_COOKIE not in response.cookies
    assert client.get("/console/queue", follow_redirects=False).status_code == 303


def test_repeated_failures_lock_the_name_even_for_the_right_password(
    service: ConversationService, world: World
) -> None:
    app = console_app(service, max_failures=3)
    with served(app) as client:
        statuses = []
        for _ in range(3):
            form = client.get("/console/login")
            wrong = {"login": "Lan", "password": "wrong password", "csrf": csrf_of(form.text)}
            statuses.append(client.post("/console/login", data=wrong).status_code)
        assert statuses == [401, 401, 429]
        form = client.get("/console/login")
        right = {"login": "lan", "password": PASSWORD, "csrf": csrf_of(form.text)}
        locked = client.post("/console/login", data=right, follow_redirects=False)
        assert locked.status_code == 429
        assert "thử lại sau" in locked.text
        # Another name is not locked.
        assert sign_in(client, "Bình")


def test_repeated_failures_from_one_address_lock_that_address(
    service: ConversationService, world: World
) -> None:
    """Many names tried from one machine: its address is locked, other machines are not.
    The address is the one uvicorn trusts: X-Forwarded-For from a proxy it trusts (the
    test client's 127.0.0.1 is trusted by default, FORWARDED_ALLOW_IPS)."""
    app = console_app(service, max_failures=5, max_failures_per_client=3)
    guesser, colleague = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.2"}
    with served(app) as client:
        statuses = []
        for name in ("an", "bao", "cuong"):
            form = client.get("/console/login")
            wrong = {"login": name, "password": "wrong password", "csrf": csrf_of(form.text)}
            response = client.post("/console/login", data=wrong, headers=guesser)
            statuses.append(response.status_code)
        assert statuses == [401, 401, 429]
        # From there even the right password of a fresh name is refused, unread.
        form = client.get("/console/login")
        right = {"login": "Lan", "password": PASSWORD, "csrf": csrf_of(form.text)}
        locked = client.post("/console/login", data=right, headers=guesser)
        assert locked.status_code == 429 and "thử lại sau" in locked.text
        # Another address signs in with it.
        form = client.get("/console/login")
        right["csrf"] = csrf_of(form.text)
        signed = client.post(
            "/console/login", data=right, headers=colleague, follow_redirects=False
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/console/queue"


def test_a_name_cannot_stand_for_an_address(service: ConversationService, world: World) -> None:
    """Failures under a typed name that looks like an address key lock only that name."""
    accounts = ConsoleAccounts(service.store, world.handoff, policy=ConsolePolicy(max_failures=2))
    for _ in range(2):
        accounts.sign_in("ip  10.0.0.9", "wrong password", client="10.0.0.1")
    assert accounts.sign_in("ip  10.0.0.9", "wrong password").outcome == "locked"
    assert accounts.sign_in("Lan", PASSWORD, client="10.0.0.9").outcome == "ok"


def test_a_disabled_volunteer_cannot_sign_in(client: httpx.Client, world: World) -> None:
    world.handoff.disable(world.lan.id)
    form = client.get("/console/login")
    data = {"login": "Lan", "password": PASSWORD, "csrf": csrf_of(form.text)}
    assert client.post("/console/login", data=data).status_code == 401


def test_an_expired_session_signs_nobody_in(
    client: httpx.Client, service: ConversationService, world: World
) -> None:
    assert service.desk is not None
    # A session opened 13 hours ago, with the default 12-hour life.
    accounts = ConsoleAccounts(service.store, service.desk.handoff, policy=ConsolePolicy())
    old = accounts.sign_in("Lan", PASSWORD, now=utcnow() - timedelta(hours=13))
    assert old.token is not None
    fresh = accounts.sign_in("Lan", PASSWORD, now=utcnow() - timedelta(hours=11))
    assert fresh.token is not None
    client.cookies.set(SESSION_COOKIE, old.token, domain="127.0.0.1", path="/console")
    expired = client.get("/console/queue", follow_redirects=False)
    assert expired.status_code == 303 and expired.headers["location"] == "/console/login"
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, fresh.token, domain="127.0.0.1", path="/console")
    assert client.get("/console/queue", follow_redirects=False).status_code == 200


def test_sign_out_ends_the_session(client: httpx.Client, world: World) -> None:
    csrf = sign_in(client, "Lan")
    token = client.cookies.get(SESSION_COOKIE)
    assert token
    assert post(client, "/console/logout", csrf=csrf).status_code == 303
    # Even a kept copy of the cookie no longer works.
    client.cookies.set(SESSION_COOKIE, token, domain="127.0.0.1", path="/console")
    assert client.get("/console/queue", follow_redirects=False).status_code == 303


# ---------------------------------------------------------------- CSRF


def test_a_post_without_the_csrf_token_is_refused(client: httpx.Client, world: World) -> None:
    ticket = world.ticket("an_hoa")
    csrf = sign_in(client, "Lan")
    for data in ({}, {"csrf": ""}, {"csrf": csrf[:-2] + "xx"}):
        response = post(client, f"/console/tickets/{ticket.id}/claim", **data)
        assert response.status_code == 403
    after = world.handoff.get_ticket(ticket.id)
    assert after is not None and after.status == TicketStatus.WAITING
    # Signing out needs it too.
    assert post(client, "/console/logout").status_code == 403
    assert client.get("/console/queue", follow_redirects=False).status_code == 200


def test_the_sign_in_form_needs_its_token(client: httpx.Client, world: World) -> None:
    client.get("/console/login")
    assert client.cookies.get(LOGIN_COOKIE)
    response = client.post("/console/login", data={"login": "Lan", "password": PASSWORD})
    assert response.status_code == 403
    assert SESSION_COOKIE not in client.cookies


# ---------------------------------------------------------------- who sees what


def test_a_volunteer_sees_their_team_and_cannot_open_another_teams_ticket(
    client: httpx.Client, world: World
) -> None:
    mine, theirs, province = world.ticket("an_hoa"), world.ticket("bac_son"), world.ticket(None)
    csrf = sign_in(client, "Lan")
    queue = client.get("/console/queue").text
    assert f"Yêu cầu #{mine.id}<" in queue and f"Yêu cầu #{province.id}<" in queue
    assert f"Yêu cầu #{theirs.id}<" not in queue
    page = client.get(f"/console/tickets/{theirs.id}")
    missing = client.get("/console/tickets/999999")
    assert page.status_code == missing.status_code == 404
    assert page.text == missing.text  # learns nothing, not even that it exists
    for action in ("claim", "note", "reply", "close"):
        refused = post(client, f"/console/tickets/{theirs.id}/{action}", csrf=csrf, text="hi")
        assert refused.status_code == 404
    after = world.handoff.get_ticket(theirs.id)
    assert after is not None and after.status == TicketStatus.WAITING
    assert world.handoff.notes(theirs.id) == []
    assert client.get("/console/volunteers").status_code == 403


def test_a_coordinator_sees_every_ticket_and_filters(client: httpx.Client, world: World) -> None:
    a, b = world.ticket("an_hoa"), world.ticket("bac_son")
    sign_in(client, "Điều Phối")
    queue = client.get("/console/queue").text
    assert f"Yêu cầu #{a.id}<" in queue and f"Yêu cầu #{b.id}<" in queue
    only_b = client.get("/console/queue", params={"team": str(world.team_b.id)}).text
    assert f"Yêu cầu #{b.id}<" in only_b and f"Yêu cầu #{a.id}<" not in only_b
    closed = client.get("/console/queue", params={"status": "closed"}).text
    assert f"Yêu cầu #{a.id}<" not in closed
    assert client.get(f"/console/tickets/{b.id}").status_code == 200
    people = client.get("/console/volunteers")
    assert people.status_code == 200 and "Bình" in people.text and "Lan" in people.text


def test_the_ticket_page_shows_context_masked_and_escaped(
    client: httpx.Client, world: World
) -> None:
    ticket = world.ticket("an_hoa")
    sign_in(client, "Lan")
    page = client.get(f"/console/tickets/{ticket.id}")
    assert page.status_code == 200
    assert PHONE not in page.text  # masked before it was stored
    assert HOSTILE not in page.text and "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
    for fact in ("Lý do", "Quy trình", "Ngôn ngữ", "Xã/phường", "Telegram", "Đoàn xã An Hòa"):
        assert fact in page.text
    assert "Nhận hỗ trợ" in page.text
    assert "Content-Security-Policy" in page.headers and page.headers["cache-control"] == "no-store"


# ---------------------------------------------------------------- actions


def test_claim_reply_note_close_go_through_the_handoff(
    client: httpx.Client, world: World, store: Store
) -> None:
    ticket = world.ticket("an_hoa")
    csrf = sign_in(client, "Lan")
    claimed = post(client, f"/console/tickets/{ticket.id}/claim", csrf=csrf)
    assert claimed.status_code == 303
    after = world.handoff.get_ticket(ticket.id)
    assert after is not None and after.status == TicketStatus.CLAIMED
    assert after.volunteer_id == world.lan.id

    post(client, f"/console/tickets/{ticket.id}/reply", csrf=csrf, text="Bác mở ứng dụng VNeID")
    post(client, f"/console/tickets/{ticket.id}/note", csrf=csrf, text="gọi lại chiều nay")
    notes = world.handoff.notes(ticket.id)
    assert [n.text for n in notes] == ["gọi lại chiều nay"]

    closed = post(client, f"/console/tickets/{ticket.id}/close", csrf=csrf)
    assert closed.status_code == 303
    done = world.handoff.get_ticket(ticket.id)
    assert done is not None and done.status == TicketStatus.CLOSED

    to_citizen = store.outbox_after(channel="telegram", chat_id=ticket.chat_id)
    texts = [item.text for item in to_citizen]
    assert any(t.startswith("Bạn Lan, tình nguyện viên, đã vào") for t in texts)
    assert "🙋 Lan: Bác mở ứng dụng VNeID" in texts
    rate = to_citizen[-1]
    assert rate.text.startswith("Bạn Lan đã kết thúc hỗ trợ")
    assert [b.label for b in rate.buttons] == ["1", "2", "3", "4", "5"]
    # Lan is on Telegram: her chat with the bot was told she took the ticket.
    to_lan = store.outbox_after(channel="telegram", chat_id=world.lan.user_id)
    assert any(f"#{ticket.id}" in item.text for item in to_lan)
    page = client.get(f"/console/tickets/{ticket.id}").text
    assert "Đã đóng" in page and "Bác mở ứng dụng VNeID" in page and "gọi lại chiều nay" in page


def test_a_reply_to_a_ticket_not_held_is_refused(
    client: httpx.Client, world: World, store: Store
) -> None:
    ticket = world.ticket("an_hoa")
    csrf = sign_in(client, "Lan")
    refused = post(client, f"/console/tickets/{ticket.id}/reply", csrf=csrf, text="xin chào")
    assert refused.status_code == 303 and "m=not_yours" in refused.headers["location"]
    assert not store.outbox_after(channel="telegram", chat_id=ticket.chat_id)
    shown = client.get(refused.headers["location"]).text
    assert "Bạn không giữ yêu cầu này nên không làm được việc này." in shown


def test_two_claims_at_once_on_two_servers_have_one_winner(
    service: ConversationService, world: World, store: Store
) -> None:
    """Lan and the coordinator press "Nhận hỗ trợ" at the same moment, each on their
    own app with its own connection pool (two server processes, one database)."""
    ticket = world.ticket("an_hoa")
    other_store = Store(store.url)
    try:
        other = make_service(other_store, service.library)
        with served(console_app(service)) as first, served(console_app(other)) as second:
            tokens = [sign_in(first, "Lan"), sign_in(second, "Điều Phối")]
            barrier = threading.Barrier(2)

            def press(pair: tuple[httpx.Client, str]) -> str:
                client, csrf = pair
                barrier.wait()
                response = post(client, f"/console/tickets/{ticket.id}/claim", csrf=csrf)
                assert response.status_code == 303, (response.status_code, response.text)
                return str(response.headers["location"])

            with ThreadPoolExecutor(2) as pool:
                results = list(pool.map(press, zip((first, second), tokens, strict=True)))
    finally:
        other_store.dispose()
    after = world.handoff.get_ticket(ticket.id)
    assert after is not None and after.status == TicketStatus.CLAIMED
    winner = 0 if after.volunteer_id == world.lan.id else 1
    assert after.volunteer_id == (world.lan.id, world.coordinator.id)[winner]
    assert results[winner] == f"/console/tickets/{ticket.id}?m=claimed"
    # The loser is told on the ticket page ("Lan đã nhận …"); Lan also on her queue when
    # the ticket was taken before her request looked at it (it is no longer hers to see).
    taken, gone = f"/console/tickets/{ticket.id}?m=taken", "/console/queue?m=gone"
    assert results[1 - winner] in ((taken, gone) if winner == 1 else (taken,)), results
    joined = [
        i
        for i in store.outbox_after(channel="telegram", chat_id=ticket.chat_id)
        if "đã vào trò chuyện" in i.text
    ]
    assert len(joined) == 1  # the citizen is told once


def test_console_only_accounts_read_relayed_messages_once(
    client: httpx.Client, service: ConversationService, world: World, store: Store
) -> None:
    ticket = world.ticket(None)
    csrf = sign_in(client, "Điều Phối")
    post(client, f"/console/tickets/{ticket.id}/claim", csrf=csrf)
    # The citizen writes while the ticket is claimed: the desk relays it to the holder.
    said = Incoming(
        channel="telegram",
        chat_id=ticket.chat_id,
        user_id=ticket.chat_id,
        text="tôi chưa nhận được tin nhắn",
        message_id="relay-1",
    )
    service.handle(said)
    first = client.get("/console/queue").text
    assert "tôi chưa nhận được tin nhắn" in first and "Tin nhắn mới" in first
    assert "Tin nhắn mới" not in client.get("/console/queue").text
    waiting = [
        i
        for i in store.outbox_after(channel="console", chat_id=world.coordinator.user_id)
        if i.status == OutboxStatus.PENDING
    ]
    assert waiting == []
    page = client.get(f"/console/tickets/{ticket.id}").text
    assert "tôi chưa nhận được tin nhắn" in page


def test_pages_need_a_session(app: FastAPI, client: httpx.Client) -> None:
    for path in ("/console/queue", "/console/tickets/1", "/console/volunteers", "/console/flows"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/console/login"
    assert post(client, "/console/tickets/1/claim", csrf="x").status_code == 403


# ---------------------------------------------------------------- volunteers and flows


def test_a_coordinator_disables_moves_and_invites(
    service: ConversationService, client: httpx.Client, world: World
) -> None:
    ticket = world.ticket("bac_son")
    claimed = world.handoff.claim(ticket.id, volunteer_id=world.binh.id)
    assert claimed.ok
    with served(console_app(service)) as binh:
        binh_csrf = sign_in(binh, "Bình")
        # A volunteer may not manage anyone.
        refused = post(binh, f"/console/volunteers/{world.lan.id}/disable", csrf=binh_csrf)
        assert refused.status_code == 403
        csrf = sign_in(client, "Điều Phối")
        disabled = post(client, f"/console/volunteers/{world.binh.id}/disable", csrf=csrf)
        assert disabled.status_code == 303
        # Bình is out at once, and the citizen he held waits for someone else.
        assert binh.get("/console/queue", follow_redirects=False).status_code == 303
    after = world.handoff.get_ticket(ticket.id)
    assert after is not None and after.status == TicketStatus.WAITING

    moved = post(
        client, f"/console/volunteers/{world.lan.id}/move", csrf=csrf, team_id=str(world.team_b.id)
    )
    assert moved.status_code == 303
    lan = world.handoff.get_volunteer(world.lan.id)
    assert lan is not None and lan.team_id == world.team_b.id

    page = post(client, "/console/invites", csrf=csrf, new_team="Đội cơ động đảo Cô Tô")
    assert page.status_code == 200
    code = re.search(r"/join ([A-Z0-9]{10})<", page.text)
    assert code is not None
    joined = world.handoff.redeem_invite(
        code.group(1), channel="telegram", user_id="3003", name="Mai"
    )
    assert joined.ok and joined.team is not None and joined.team.name == "Đội cơ động đảo Cô Tô"


def test_the_flows_page_lists_and_draws_the_flows(
    client: httpx.Client, service: ConversationService, world: World
) -> None:
    sign_in(client, "Lan")
    listing = client.get("/console/flows")
    assert listing.status_code == 200
    flows = service.library.catalog.flows()
    assert flows and all(f'href="/console/flows/{fid}"' in listing.text for fid in flows)
    flow_id = sorted(flows)[0]
    page = client.get(f"/console/flows/{flow_id}")
    assert page.status_code == 200
    # A picture from bot.flow.graph.to_svg, or the Mermaid text while it is missing.
    assert "<svg" in page.text or '<pre class="mermaid">flowchart TD' in page.text
    assert client.get("/console/flows/no_such_flow").status_code == 404


def test_transfer_hands_the_ticket_back_with_a_note(
    client: httpx.Client, world: World, store: Store
) -> None:
    ticket = world.ticket("an_hoa")
    csrf = sign_in(client, "Lan")
    post(client, f"/console/tickets/{ticket.id}/claim", csrf=csrf)
    moved = post(
        client, f"/console/tickets/{ticket.id}/transfer", csrf=csrf, text="đã hướng dẫn bước 1"
    )
    assert moved.status_code == 303 and moved.headers["location"].endswith("m=transferred")
    after = world.handoff.get_ticket(ticket.id)
    assert after is not None and after.status == TicketStatus.WAITING
    assert after.volunteer_id is None
    assert [n.text for n in world.handoff.notes(ticket.id)] == ["đã hướng dẫn bước 1"]
    told = [i.text for i in store.outbox_after(channel="telegram", chat_id=ticket.chat_id)]
    assert told[-1].startswith("Bạn tình nguyện viên vừa phải dừng")
    # Lan no longer holds it: she sees it as a waiting ticket of her team again.
    page = client.get(f"/console/tickets/{ticket.id}")
    assert page.status_code == 200 and "Nhận hỗ trợ" in page.text


def test_a_hostile_volunteer_name_is_shown_as_text(client: httpx.Client, world: World) -> None:
    invite = world.handoff.create_invite(world.team_b.id, created_by="test")
    name = '<img src=x onerror="alert(1)">'
    joined = world.handoff.redeem_invite(invite.code, channel="telegram", user_id="66", name=name)
    assert joined.ok
    sign_in(client, "Điều Phối")
    page = client.get("/console/volunteers").text
    assert "<img" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_the_loser_of_a_claim_learns_it_was_taken(
    service: ConversationService, client: httpx.Client, world: World
) -> None:
    ours, theirs = world.ticket("an_hoa"), world.ticket("bac_son")
    csrf = sign_in(client, "Lan")
    assert world.handoff.claim(ours.id, volunteer_id=world.coordinator.id).ok
    assert world.handoff.claim(theirs.id, volunteer_id=world.coordinator.id).ok is False  # busy
    assert world.handoff.claim(theirs.id, volunteer_id=world.binh.id).ok
    late = post(client, f"/console/tickets/{ours.id}/claim", csrf=csrf)
    assert late.headers["location"] == "/console/queue?m=gone"
    assert "vừa có người khác nhận" in client.get(late.headers["location"]).text
    # Another team's ticket stays a missing page, taken or not.
    assert post(client, f"/console/tickets/{theirs.id}/claim", csrf=csrf).status_code == 404
