"""The conversation engine: `resume(content, session, incoming) -> Turn`.

Pure: no I/O, no SDK, no database. It reads immutable content (flows, phrases, the
router), the citizen's session and one incoming message, and returns the new session
and the events that say what happened. The caller stores both in one transaction and
delivers the `Said`/`Asked` texts.

How a message is understood, in order:
  1. a pressed button (its payload), or an attachment;
  2. a global word (menu, back, restart, help, human, stop, language);
  3. a scam described (the router's cues) → the scam warning, even inside a flow:
     safety first; then the step is asked again;
  4. the answer to the step the citizen is on (choice number or label, typed value);
  5. in a step, "it does not work" → a volunteer is offered;
  6. the router: a human request, a flow trigger, a knowledge answer (shown, then the
     step asked again), "it does not work" outside a step, "did you mean";
  7. otherwise a re-prompt (in a flow) or a fallback (outside), and after repeated
     failures a volunteer is offered (in a flow) or called (outside).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from bot.flow import answers
from bot.flow.events import (
    AnswerAccepted,
    AnswerRejected,
    AnswerShown,
    Asked,
    CommandUsed,
    Event,
    FlowEnded,
    FlowRestarted,
    FlowStarted,
    ForgetRequested,
    HandoffOffered,
    HandoffRequested,
    LanguageChanged,
    MediaReceived,
    NotUnderstood,
    Said,
    StaleButtonPressed,
)
from bot.flow.model import Condition, Flow, Step, pick
from bot.flow.session import HISTORY_LIMIT, Frame, Session, Value
from bot.knowledge import Entry
from bot.messages import Button, Incoming, MediaKind
from bot.phrases import Phrases, fill
from bot.router import Route, Router
from bot.text import fold, is_blank

MENU_FLOW = "menu"
# Fallbacks in a row outside a flow before a volunteer is called.
MAX_MISSES = 2
# Steps run without waiting in one turn before the engine assumes a loop in content.
MAX_CHAIN = 50
LANGS = ("vi", "en")


class FlowSource(Protocol):
    """Where the engine finds flows: the current ones and any revision still known."""

    def get(self, flow_id: str) -> Flow | None: ...

    def revision(self, flow_id: str, rev: str) -> Flow | None: ...

    def flows(self) -> Mapping[str, Flow]: ...


@dataclass(frozen=True)
class Content:
    """Everything the engine reads, fixed for the duration of one turn."""

    flows: FlowSource
    phrases: Phrases
    router: Router
    knowledge: Mapping[str, Entry] = field(default_factory=dict)  # answers by id
    max_failures: int = 2
    max_chars: int = 4000


@dataclass(frozen=True)
class Turn:
    session: Session
    events: tuple[Event, ...]


def resume(content: Content, session: Session, incoming: Incoming) -> Turn:
    """Advance `session` by one incoming message."""
    run = _Run(content, session, incoming.lang_hint)
    if incoming.payload:
        run.pressed(incoming.payload)
    elif incoming.media is not None and is_blank(incoming.text):
        run.media(incoming.media.kind)
    else:
        run.typed(incoming.text)
    return Turn(run.remember_buttons(), tuple(run.events))


# Payloads of buttons the engine makes. Choice payloads name flow and step, so a button
# pressed after a restart or an edit is still understood, or recognised as stale.
def choice_payload(flow_id: str, step_id: str, index: int) -> str:
    return f"c:{flow_id}:{step_id}:{index}"


def command_payload(name: str) -> str:
    return f"g:{name}"


def flow_payload(flow_id: str) -> str:
    return f"f:{flow_id}"


def answer_payload(answer_id: str) -> str:
    return f"a:{answer_id}"


class _Run:
    """The mutable working state of one `resume` call."""

    def __init__(self, content: Content, session: Session, lang_hint: str | None) -> None:
        self.c = content
        self.p = content.phrases
        self.session = session
        self.events: list[Event] = []
        # Set when an edited flow was restarted: the message that found it is used up.
        self.restarted = False
        if not session.stack and not session.vars and lang_hint in LANGS and lang_hint:
            self.session = replace(session, lang=lang_hint)

    # -- helpers -------------------------------------------------------------------

    def remember_buttons(self) -> Session:
        """The session to keep, with the payloads of the last buttons shown this turn."""
        for event in reversed(self.events):
            if isinstance(event, Said | Asked) and event.buttons:
                payloads = tuple(b.payload for b in event.buttons if b.url is None)
                return replace(self.session, buttons=payloads)
        return self.session

    @property
    def lang(self) -> str:
        return self.session.lang

    def say(self, text: str, buttons: tuple[Button, ...] = ()) -> None:
        self.events.append(Said(text, buttons))

    def say_key(self, key: str, buttons: tuple[Button, ...] = (), **values: object) -> None:
        self.say(self.p.text(key, self.lang, **values), buttons)

    def human_button(self) -> Button:
        return Button(self.p.button("human", self.lang), command_payload("human"))

    def menu_button(self) -> Button:
        return Button(self.p.button("menu", self.lang), command_payload("menu"))

    def where(self) -> tuple[str | None, str | None]:
        frame = self.session.current
        return (frame.flow_id, frame.step_id) if frame else (None, None)

    def set_stack(self, stack: tuple[Frame, ...]) -> None:
        self.session = replace(self.session, stack=stack, failures=0, offered_human=False)

    # -- entry points --------------------------------------------------------------

    def pressed(self, payload: str) -> None:
        kind, _, rest = payload.partition(":")
        if kind == "g" and rest:
            self.command(rest)
        elif kind == "f" and rest:
            self.misses_reset()
            self.start_flow(rest, mode="replace")
        elif kind == "a" and rest and rest in self.c.knowledge:
            self.show_answer(rest, 100.0)
        elif kind == "c":
            self.pressed_choice(payload, rest)
        else:
            self.stale(payload)

    def pressed_choice(self, payload: str, rest: str) -> None:
        flow_id, _, tail = rest.partition(":")
        step_id, _, index_text = tail.rpartition(":")
        frame = self.session.current
        located = self.locate()
        if self.restarted:
            return
        if frame is None or located is None or not index_text.isdigit():
            self.stale(payload)
            return
        flow, step = located
        frame = self.session.current
        assert frame is not None
        choices = step.choices or ()
        index = int(index_text)
        if (flow.id, frame.step_id) != (flow_id, step_id) or index >= len(choices):
            self.stale(payload)
            return
        self.misses_reset()
        self.choose(flow, step, index)

    def media(self, kind: MediaKind) -> None:
        """An attachment is kept with the message for a volunteer. A photo (often a
        screenshot of an error), a voice note, a video or a file says something the bot
        cannot read: a volunteer is called at once and the guide goes on meanwhile. A
        sticker or anything else is only acknowledged, with a volunteer offered."""
        self.events.append(MediaReceived(kind.value))
        name = self.p.media_name(kind.value, self.lang)
        if kind in _MEDIA_FOR_A_VOLUNTEER:
            self.say_key("media_received", media=name)
            self.handoff("media")
        else:
            flow_id, step_id = self.where()
            self.events.append(HandoffOffered("media", flow_id, step_id))
            self.say_key("media_offer", (self.human_button(),), media=name)
        self.reprompt()

    def typed(self, raw: str) -> None:
        if is_blank(raw):
            self.say_key("empty_message")
            self.reprompt()
            return
        text = raw
        if len(raw) > self.c.max_chars:
            text = raw[: self.c.max_chars]
            self.say_key("too_long")
        name = self.c.router.command(text)
        if name is not None:
            self.command(name)
            return
        scam = self.c.router.scam(text)
        if scam is not None:  # before the step's own answer: a warning interrupts anything
            self.show_answer(scam, 100.0)
            return
        located = self.locate()
        if self.restarted:
            return
        if located is None or located[1].choices is not None:
            # Outside typed questions, a bare number means the button with that number.
            number = _button_number(text)
            if number is not None and 1 <= number <= len(self.session.buttons):
                self.pressed(self.session.buttons[number - 1])
                return
        if located is not None:
            flow, step = located
            if self.answer(flow, step, text):
                return
        self.free_text(text, in_step=located is not None)

    # -- global words ----------------------------------------------------------------

    def command(self, name: str) -> None:
        self.events.append(CommandUsed(name))
        self.misses_reset()
        if name in ("start", "menu"):
            if name == "start":
                self.say_key("welcome")
            self.show_menu()
        elif name == "back":
            self.back()
        elif name == "restart":
            self.restart()
        elif name == "help":
            self.say_key("help")
            self.reprompt()
        elif name == "human":
            self.handoff("asked_human")
        elif name == "stop":
            self.end_all("stopped")
            self.say_key("stopped", (self.menu_button(),))
        elif name == "forget":
            self.end_all("forgotten")
            self.session = Session(lang=self.lang)
            self.events.append(ForgetRequested())
            self.say_key("forgotten")
        elif name.startswith("lang_") and name[5:] in LANGS:
            self.session = replace(self.session, lang=name[5:])
            self.events.append(LanguageChanged(self.lang))
            self.say_key("language_changed")
            self.reprompt()
        else:
            self.stale(command_payload(name))

    def show_menu(self) -> None:
        self.end_all("menu")
        if self.c.flows.get(MENU_FLOW) is not None:
            self.start_flow(MENU_FLOW, mode="replace")
            return
        listed = sorted(
            (f for f in self.c.flows.flows().values() if f.menu is not None),
            key=lambda f: (f.menu or 0, f.id),
        )
        buttons = tuple(Button(pick(f.title, self.lang), flow_payload(f.id)) for f in listed)
        self.say_key("menu_fallback", buttons[:9] + (self.human_button(),))

    def back(self) -> None:
        history = self.session.history
        # The last entry is the step the citizen is on now; the one before is "back".
        if len(history) < 2:
            self.say_key("back_at_start")
            self.reprompt()
            return
        self.session = replace(self.session, history=history[:-2])
        self.set_stack(history[-2])
        self.run_current(enter=False)

    def restart(self) -> None:
        if not self.session.stack:
            self.show_menu()
            return
        root = self.session.stack[0].flow_id
        self.end_all("restarted")
        self.start_flow(root, mode="replace")

    # -- flows ------------------------------------------------------------------------

    def start_flow(self, flow_id: str, *, mode: str, resume_at: str | None = None) -> None:
        """Start a flow. mode "replace": it replaces whatever ran; "enter": the current
        flow waits and goes on at `resume_at` when it ends; "tail": pushed on the stack
        as it is (the caller has just finished the current flow)."""
        flow = self.c.flows.get(flow_id)
        if flow is None:
            self.say_key("flow_gone", (self.menu_button(),))
            return
        stack = self.session.stack
        if mode == "replace":
            self.end_all("switched")
            stack = ()
        elif mode == "enter" and stack:
            stack = stack[:-1] + (replace(stack[-1], resume_at=resume_at),)
        self.events.append(FlowStarted(flow.id, flow.version, flow.rev))
        self.set_stack(stack + (Frame(flow.id, flow.rev, flow.start),))
        self.run_current(enter=True)

    def end_all(self, reason: str) -> None:
        for frame in reversed(self.session.stack):
            self.events.append(FlowEnded(frame.flow_id, completed=False, reason=reason))
        self.set_stack(())

    def locate(self) -> tuple[Flow, Step] | None:
        """The flow and step the citizen waits at, honouring edits made meanwhile:
        the revision they started on if known, else the current one if the step still
        exists there, else the flow restarts with an apology."""
        frame = self.session.current
        if frame is None:
            return None
        flow = self.c.flows.revision(frame.flow_id, frame.rev)
        if flow is None:
            current = self.c.flows.get(frame.flow_id)
            if current is None:
                self.events.append(FlowEnded(frame.flow_id, completed=False, reason="removed"))
                self.set_stack(self.session.stack[:-1])
                self.say_key("flow_gone", (self.menu_button(),))
                return self.locate()
            if current.step(frame.step_id) is None:
                self.events.append(
                    FlowRestarted(frame.flow_id, frame.rev, current.rev, frame.step_id)
                )
                self.say_key("flow_updated")
                self.restarted = True
                self.set_stack(
                    self.session.stack[:-1] + (Frame(current.id, current.rev, current.start),)
                )
                self.run_current(enter=True)
                return None
            self.set_stack(self.session.stack[:-1] + (replace(frame, rev=current.rev),))
            flow = current
        step = flow.step(frame.step_id)
        if step is None:  # a revision always has its own steps; guard against bad snapshots
            self.end_all("broken")
            self.say_key("flow_gone", (self.menu_button(),))
            return None
        return flow, step

    def run_current(self, *, enter: bool) -> None:
        """Run steps from the current frame's step until one waits or the stack empties.
        `enter=False` re-shows a waiting step without re-running what led to it."""
        for _ in range(MAX_CHAIN):
            frame = self.session.current
            if frame is None:
                return
            flow = self.c.flows.revision(frame.flow_id, frame.rev) or self.c.flows.get(
                frame.flow_id
            )
            step = flow.step(frame.step_id) if flow else None
            if flow is None or step is None:
                self.end_all("broken")
                self.say_key("flow_gone", (self.menu_button(),))
                return
            if step.waits:
                self.ask(flow, step, frame.step_id)
                return
            target = self.perform(flow, step, frame.step_id)
            if target is None:
                return
            if target == "":
                if not self.flow_finished(quiet=step.handoff is not None):
                    return
                continue
            self.move(target)
        self.end_all("loop")
        self.say_key("flow_gone", (self.menu_button(),))

    def perform(self, flow: Flow, step: Step, step_id: str) -> str | None:
        """Do a step that does not wait. Returns the next step id, "" when the flow ends
        here, or None when another flow took over (the run goes on there)."""
        if step.say is not None:
            self.say(self.text(step.say))
        if step.handoff is not None:
            self.events.append(HandoffRequested(step.handoff.reason, flow.id, step_id))
            self.say_key("handoff_started")
            return step.next or ""
        if step.flow is not None:
            self.start_flow(step.flow, mode="enter", resume_at=step.next)
            return None
        if step.branch is not None:
            values = self.session.variables
            for rule in step.branch:
                if rule.if_ is None or _holds(rule.if_, values):
                    return rule.goto
            return ""  # no rule held and no default: the linter warns about this
        if step.end:
            return ""
        return step.next or ""

    def move(self, step_id: str) -> None:
        frame = self.session.current
        assert frame is not None
        self.set_stack(self.session.stack[:-1] + (replace(frame, step_id=step_id),))

    def finish_frame(self, *, completed: bool) -> None:
        frame = self.session.current
        assert frame is not None
        self.events.append(FlowEnded(frame.flow_id, completed=completed))
        self.set_stack(self.session.stack[:-1])

    def flow_finished(self, *, quiet: bool) -> bool:
        """The current flow reached its end. Go on in the flow that entered it, at its
        resume step, or end that one too. True when some flow goes on; when none is left,
        the citizen is told what they can do next (unless `quiet`)."""
        self.finish_frame(completed=True)
        while self.session.stack:
            parent = self.session.current
            assert parent is not None
            if parent.resume_at is None:
                self.finish_frame(completed=True)
                continue
            flow = self.c.flows.revision(parent.flow_id, parent.rev) or self.c.flows.get(
                parent.flow_id
            )
            if flow is None or flow.step(parent.resume_at) is None:
                self.finish_frame(completed=False)
                continue
            self.set_stack(
                self.session.stack[:-1]
                + (replace(parent, rev=flow.rev, step_id=parent.resume_at, resume_at=None),)
            )
            return True
        if not quiet:
            self.say_key("done", (self.menu_button(),))
        return False

    def ask(self, flow: Flow, step: Step, step_id: str) -> None:
        """Show a waiting step and remember it for `back`."""
        frame = self.session.current
        assert frame is not None
        text = self.text(step.say or step.ask or {"vi": ""})
        buttons = self.buttons(flow, step, step_id)
        self.events.append(Asked(text, buttons, flow.id, step_id))
        history = self.session.history
        if not history or history[-1] != self.session.stack:
            history = (history + (self.session.stack,))[-HISTORY_LIMIT:]
        self.session = replace(self.session, history=history)

    def buttons(self, flow: Flow, step: Step, step_id: str) -> tuple[Button, ...]:
        out = tuple(
            Button(pick(c.label, self.lang), choice_payload(flow.id, step_id, i))
            for i, c in enumerate(step.choices or ())
        )
        if not any(c.handoff for c in step.choices or ()):
            out += (self.human_button(),)
        return out

    def reprompt(self) -> None:
        located = self.locate()
        if located is None:
            return
        flow, step = located
        frame = self.session.current
        assert frame is not None
        self.ask(flow, step, frame.step_id)

    # -- answers ----------------------------------------------------------------------

    def answer(self, flow: Flow, step: Step, text: str) -> bool:
        """Try `text` as the answer to the waiting step. True when it was handled."""
        frame = self.session.current
        assert frame is not None
        if step.choices is not None:
            labels = [pick(c.label, self.lang) for c in step.choices]
            index = answers.match_choice(text, labels)
            if index is None and self.lang != "vi":
                index = answers.match_choice(text, [pick(c.label, "vi") for c in step.choices])
            if index is not None:
                self.misses_reset()
                self.choose(flow, step, index)
                return True
            return False
        value = _parse(step, text)
        if value is None:
            return False
        self.misses_reset()
        if step.save:
            self.session = self.session.with_var(step.save, value)
        self.events.append(AnswerAccepted(flow.id, frame.step_id, step.save))
        assert step.next is not None
        self.move(step.next)
        self.run_current(enter=True)
        return True

    def choose(self, flow: Flow, step: Step, index: int) -> None:
        frame = self.session.current
        assert frame is not None and step.choices is not None
        choice = step.choices[index]
        if step.save:
            self.session = self.session.with_var(
                step.save, choice.value if choice.value is not None else pick(choice.label, "vi")
            )
        self.events.append(AnswerAccepted(flow.id, frame.step_id, step.save))
        if choice.handoff is not None:
            self.handoff(choice.handoff)
        elif choice.flow is not None:
            if choice.goto is None:  # a tail call: this flow is done, the other takes over
                self.finish_frame(completed=True)
                self.start_flow(choice.flow, mode="tail")
            else:
                self.start_flow(choice.flow, mode="enter", resume_at=choice.goto)
        elif choice.end:
            if self.flow_finished(quiet=False):
                self.run_current(enter=True)
        else:
            assert choice.goto is not None
            self.move(choice.goto)
            self.run_current(enter=True)

    def free_text(self, text: str, *, in_step: bool) -> None:
        """A message that is not an answer to the current step."""
        flow_id, step_id = self.where()
        # In a step, "it does not work" is about that step; outside, a topic may say it
        # ("vneid bị lỗi hệ thống") and its answer helps more than a volunteer's queue.
        if in_step and self.c.router.is_stuck(text):
            self.offer_human("stuck")
            return
        route = self.c.router.route(text)
        if route.kind == "human":
            self.handoff("asked_human")
            return
        if route.kind == "command" and route.id:
            self.command(route.id)
            return
        if route.kind == "flow" and route.id:
            self.misses_reset()
            self.start_flow(route.id, mode="replace")
            return
        if route.kind == "answer" and route.id is not None and route.id in self.c.knowledge:
            self.show_answer(route.id, route.score)
            return
        if not in_step and self.c.router.is_stuck(text):
            self.offer_human("stuck")
            return
        if in_step:
            self.rejected(text)
            return
        if route.kind == "clarify" and route.candidates:
            self.clarify(route)
            return
        misses = self.session.misses + 1
        self.session = replace(self.session, misses=misses)
        self.events.append(NotUnderstood(misses, flow_id, step_id))
        if misses >= MAX_MISSES:
            self.session = replace(self.session, misses=0)
            self.handoff("not_understood")
            return
        self.say_key("not_understood", (self.menu_button(), self.human_button()))

    def rejected(self, text: str) -> None:
        located = self.locate()
        frame = self.session.current
        if located is None or frame is None:
            return
        flow, step = located
        failures = self.session.failures + 1
        self.session = replace(self.session, failures=failures)
        self.events.append(AnswerRejected(flow.id, frame.step_id, failures))
        if step.invalid is not None:
            self.say(self.text(step.invalid))
        else:
            self.say_key(_invalid_key(step))
        if failures >= self.c.max_failures and not self.session.offered_human:
            # Stuck at one step: call a volunteer now (one ticket per conversation; the
            # desk tells the citizen the wait), and keep the step open meanwhile.
            self.say_key("step_hard")
            self.handoff("step_failed")
            self.session = replace(self.session, offered_human=True)
            self.reprompt_keep_offer()
            return
        self.ask(flow, step, frame.step_id)

    def offer_human(self, reason: str) -> None:
        flow_id, step_id = self.where()
        self.events.append(HandoffOffered(reason, flow_id, step_id))
        self.say_key("offer_human", (self.human_button(),))
        self.session = replace(self.session, offered_human=True)
        self.reprompt_keep_offer()

    def reprompt_keep_offer(self) -> None:
        offered = self.session.offered_human
        self.reprompt()
        self.session = replace(self.session, offered_human=offered)

    def show_answer(self, answer_id: str, score: float) -> None:
        """Show a knowledge answer with its buttons; in a flow, then ask the step again."""
        entry = self.c.knowledge[answer_id]
        self.misses_reset()
        self.events.append(AnswerShown(entry.id, score))
        self.say(pick(entry.answer, self.lang), self.answer_buttons(entry))
        self.reprompt()

    def answer_buttons(self, entry: Entry) -> tuple[Button, ...]:
        out = []
        for index, button in enumerate(entry.buttons):
            label = pick(button.label, self.lang)
            if button.flow is not None:
                out.append(Button(label, flow_payload(button.flow)))
            elif button.human:
                out.append(Button(label, command_payload("human")))
            elif button.url is not None:
                out.append(Button(label, f"u:{entry.id}:{index}", url=button.url))
        return tuple(out)

    def clarify(self, route: Route) -> None:
        buttons: list[Button] = []
        for kind, target, _ in route.candidates[:3]:
            if kind == "flow":
                flow = self.c.flows.get(target)
                if flow is not None:
                    buttons.append(Button(pick(flow.title, self.lang), flow_payload(flow.id)))
            elif kind == "answer" and target in self.c.knowledge:
                title = pick(self.c.knowledge[target].title, self.lang)
                buttons.append(Button(title, answer_payload(target)))
        if not buttons:
            self.say_key("not_understood", (self.menu_button(), self.human_button()))
            return
        self.say_key("did_you_mean", tuple(buttons) + (self.human_button(),))

    def handoff(self, reason: str) -> None:
        flow_id, step_id = self.where()
        self.events.append(HandoffRequested(reason, flow_id, step_id))
        self.say_key("handoff_started")

    def stale(self, payload: str) -> None:
        self.events.append(StaleButtonPressed(payload))
        self.say_key("stale_button")
        if self.session.current is None:
            self.show_menu()
        else:
            self.reprompt()

    def misses_reset(self) -> None:
        if self.session.misses:
            self.session = replace(self.session, misses=0)

    def text(self, local: Mapping[str, str]) -> str:
        return fill(pick(local, self.lang), self.session.variables)


# Attachments that carry a question the bot cannot read (see `media`).
_MEDIA_FOR_A_VOLUNTEER = frozenset(
    {MediaKind.PHOTO, MediaKind.VOICE, MediaKind.AUDIO, MediaKind.VIDEO, MediaKind.DOCUMENT}
)

_BUTTON_NUMBER = re.compile(r"^(?:so|chon|bam|nut|number|option)?\s*(\d{1,2})$")


def _button_number(text: str) -> int | None:
    match = _BUTTON_NUMBER.match(fold(text))
    return int(match.group(1)) if match else None


def _invalid_key(step: Step) -> str:
    if step.choices is not None:
        return "invalid_choice"
    kind = step.expect.type if step.expect else "text"
    return {
        "number": "invalid_number",
        "date": "invalid_date",
        "phone": "invalid_phone",
        "yes_no": "invalid_yes_no",
    }.get(kind, "invalid_text")


def _parse(step: Step, text: str) -> Value | None:
    expect = step.expect
    kind = expect.type if expect else "text"
    low = expect.min if expect else None
    high = expect.max if expect else None
    if kind == "number":
        return answers.parse_number(text, min=low, max=high)
    if kind == "date":
        lo_year = int(low) if low is not None else None
        hi_year = int(high) if high is not None else None
        parsed = answers.parse_date(text, min_year=lo_year, max_year=hi_year)
        return parsed.isoformat() if parsed else None
    if kind == "phone":
        return answers.parse_phone(text)
    if kind == "yes_no":
        return answers.parse_yes_no(text)
    stripped = " ".join(text.split())
    if low is not None and len(stripped) < low:
        return None
    if high is not None and len(stripped) > high:
        return None
    return stripped or None


def _holds(cond: Condition, values: Mapping[str, Value]) -> bool:
    present = cond.var in values
    if cond.is_set is not None and cond.is_set != present:
        return False
    if not present:
        return cond.is_set is False
    value = values[cond.var]
    if cond.equals is not None and not _same(value, cond.equals):
        return False
    if cond.not_equals is not None and _same(value, cond.not_equals):
        return False
    if cond.in_ is not None and not any(_same(value, v) for v in cond.in_):
        return False
    number = _as_number(value)
    if cond.below is not None and (number is None or number >= cond.below):
        return False
    return not (cond.at_least is not None and (number is None or number < cond.at_least))


def _same(a: Value, b: Value) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or str(a).lower() == str(b).lower()
    na, nb = _as_number(a), _as_number(b)
    if na is not None and nb is not None:
        return na == nb
    return str(a).casefold() == str(b).casefold()


def _as_number(value: Value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return None


def prompt(content: Content, session: Session) -> Turn:
    """Ask again where `session` stands (the step's question and its buttons), or show
    the menu outside a flow: what a citizen sees when a volunteer hands them back."""
    run = _Run(content, session, None)
    if session.current is not None:
        run.reprompt()
    if not run.events:
        run.show_menu()
    return Turn(run.remember_buttons(), tuple(run.events))
