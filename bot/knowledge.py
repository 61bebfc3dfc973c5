"""Answers from knowledge/: short, sourced replies to what citizens ask.

One YAML file holds a list of entries under `entries:` (knowledge/answers/*.yaml):

    entries:
      - id: vneid_forgot_password
        title: {vi: "Quên mật khẩu VNeID", en: "Forgot the VNeID password"}
        examples:                      # how citizens ask; the router learns from these
          vi: ["quên mật khẩu vneid", "quen mat khau vneid"]
          en: ["forgot my vneid password"]
        answer:
          vi: "1. Mở ứng dụng VNeID.\\n2. Bấm \\"Quên mật khẩu\\"..."
          en: "1. Open the VNeID app.\\n2. ..."
        buttons:                       # optional, at most 3
          - {label: {vi: "Kích hoạt tài khoản", en: "Activate"}, flow: vneid_activate}
          - {label: {vi: "Cần người giúp", en: "Talk to a person"}, human: true}
          - {label: {vi: "Trang chính thức", en: "Official page"}, url: "https://vneid.gov.vn"}
        sources:                       # at least one: official page, date checked
          - {url: "https://…", checked: 2026-11-30, title: "…"}
"""

from __future__ import annotations

from pydantic import Field, model_validator

from bot.flow.model import FlowId, LocalText, Source, _Model

ENTRY_ID = r"^[a-z][a-z0-9_]*$"


class AnswerButton(_Model):
    """A button under an answer: start a flow, call a volunteer, or open a page."""

    label: LocalText
    flow: FlowId | None = None
    human: bool = False
    url: str | None = Field(default=None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _one_target(self) -> AnswerButton:
        if sum((self.flow is not None, self.human, self.url is not None)) != 1:
            raise ValueError("a button needs exactly one of: flow, human, url")
        return self


class Entry(_Model):
    """One answer the bot can give."""

    id: str = Field(pattern=ENTRY_ID, max_length=40)
    title: LocalText
    examples: dict[str, tuple[str, ...]]
    answer: LocalText
    buttons: tuple[AnswerButton, ...] = Field(default=(), max_length=3)
    sources: tuple[Source, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _has_vietnamese_examples(self) -> Entry:
        if not self.examples.get("vi"):
            raise ValueError("'examples' needs Vietnamese questions under 'vi'")
        return self


class KnowledgeFile(_Model):
    entries: tuple[Entry, ...] = Field(min_length=1)
