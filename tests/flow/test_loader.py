"""bot.flow.loader: YAML → Flow, problems as file:line, lint, the hot-reloading catalog."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from bot.errors import ContentError, FlowLoadError, Problem
from bot.flow.loader import (
    FlowCatalog,
    format_problems,
    lint,
    load_flow_file,
    load_flows,
    load_yaml_model,
)
from bot.flow.model import LocalText

VALID = """\
id: demo
version: 1
title: {vi: "Thử", en: "Demo"}
triggers: {vi: ["thử nghiệm"], en: ["demo"]}
start: hello
steps:
  hello:
    say: {vi: "Chào bạn. Bạn có điện thoại chưa?"}
    choices:
      - {label: {vi: "Có"}, goto: done}
      - {label: {vi: "Chưa"}, handoff: no_phone}
  done:
    say: {vi: "Xong."}
    end: true
"""

OTHER = """\
id: other
version: 1
title: {vi: "Khác"}
triggers: {vi: ["khác"]}
start: only
steps:
  only:
    say: {vi: "Xong."}
    end: true
"""


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty flows folder, given as the relative path `flows` (as users pass it)."""
    monkeypatch.chdir(tmp_path)
    folder = Path("flows")
    folder.mkdir()
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems(folder: Path) -> list[str]:
    return [str(p) for p in load_flows(folder).problems]


def only_problem(folder: Path) -> str:
    found = problems(folder)
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------- loading


def test_valid_flow_loads_with_rev_from_file_bytes(flows: Path) -> None:
    path = write(flows, "demo.yaml", VALID)

    flow = load_flow_file(path)

    assert flow.rev == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert list(flow.steps) == ["hello", "done"]
    result = load_flows(flows)
    assert result.flows == {"demo": flow}
    assert result.problems == ()


def test_underscore_files_and_tests_folder_are_not_flows(flows: Path) -> None:
    write(flows, "demo.yaml", VALID)
    write(flows, "_draft.yaml", "not: [valid")
    write(flows, "tests/demo_test.yaml", "flow: demo\nsteps: []\n")
    write(flows, "notes.txt", "not yaml at all: [")

    result = load_flows(flows)

    assert list(result.flows) == ["demo"]
    assert result.problems == ()


def test_flows_in_subfolders_load(flows: Path) -> None:
    write(flows, "vneid/demo.yaml", VALID)

    assert list(load_flows(flows).flows) == ["demo"]


def test_missing_folder_is_a_content_error(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="does not exist"):
        load_flows(tmp_path / "nowhere")


def test_load_flow_file_reports_every_problem(flows: Path) -> None:
    text = VALID.replace("version: 1", "version: one").replace("goto: done", "gotoo: done")
    path = write(flows, "demo.yaml", text)

    with pytest.raises(FlowLoadError) as caught:
        load_flow_file(path)

    assert [str(p) for p in caught.value.problems] == [
        "flows/demo.yaml:2: 'version': should be a whole number, not the text 'one'",
        "flows/demo.yaml:10: step 'hello', choice 1: unknown key 'gotoo'; did you mean 'goto'?",
    ]


# ---------------------------------------------------------------- YAML and schema


def test_tab_used_for_indentation(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace("    end: true", "\tend: true"))

    assert only_problem(flows) == "flows/demo.yaml:14: a tab is used for indentation; use spaces"


def test_yaml_syntax_error_has_its_line(flows: Path) -> None:
    text = VALID.replace('say: {vi: "Xong."}', "say: {vi: Xong: rồi}")
    write(flows, "demo.yaml", text)

    assert only_problem(flows) == (
        "flows/demo.yaml:13: a { } is not closed with }, or a text in it needs quotes"
    )


def test_unclosed_list_names_where_it_opens(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace('en: ["demo"]}', 'en: ["demo",\n  "x"}'))

    assert only_problem(flows) == (
        "flows/demo.yaml:5: a [ ] list is not closed with ], or a text in it needs quotes"
        " (it opens on line 4)"
    )


def test_unclosed_quote_is_reported_where_it_opens(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace('"Xong."', '"Xong.'))

    assert only_problem(flows) == "flows/demo.yaml:13: a quoted text is not closed"


def test_wrong_indentation(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace("  done:", " done:"))

    assert only_problem(flows) == (
        "flows/demo.yaml:12: the indentation does not match the lines above"
    )


def test_empty_file_and_list_file(flows: Path) -> None:
    write(flows, "empty.yaml", "")
    write(flows, "list.yaml", "- a\n- b\n")

    assert problems(flows) == [
        "flows/empty.yaml:1: the file is empty",
        "flows/list.yaml:1: a flow file must be a set of keys: id, version, title, start, steps…",
    ]


def test_impossible_date_is_reported_on_its_line(flows: Path) -> None:
    text = VALID.replace(
        "version: 1", "version: 1\nsources:\n  - {url: 'https://x.vn', checked: 2025-13-01}"
    )
    write(flows, "demo.yaml", text)

    assert only_problem(flows) == "flows/demo.yaml:4: cannot read a value: month must be in 1..12"


def test_unknown_key_with_suggestion(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace("    end: true", "    ned: true"))

    assert only_problem(flows) == (
        "flows/demo.yaml:14: step 'done': unknown key 'ned'; did you mean 'end'?"
    )


def test_unknown_key_without_close_match_lists_allowed_keys(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace("start: hello", "start: hello\ncolour: red"))

    found = only_problem(flows)
    assert found.startswith("flows/demo.yaml:6: unknown key 'colour'; the keys allowed here")
    assert "steps" in found


def test_missing_key_is_reported_on_its_parent(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace("start: hello\n", ""))

    assert only_problem(flows) == "flows/demo.yaml:1: the key 'start' is missing"


def test_missing_vietnamese_text(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace('say: {vi: "Xong."}', 'say: {en: "Done."}'))

    assert only_problem(flows) == (
        "flows/demo.yaml:13: step 'done', 'say': a Vietnamese text ('vi') is required"
    )


def test_plain_string_where_texts_by_language_are_expected(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace('say: {vi: "Xong."}', 'say: "Xong."'))

    found = only_problem(flows)
    assert found.startswith("flows/demo.yaml:13: step 'done', 'say': should be texts by language")


def test_yes_no_read_as_booleans_get_a_hint(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace("goto: done", "goto: no"))

    found = only_problem(flows)
    assert found.startswith("flows/demo.yaml:10: step 'hello', choice 1, 'goto': should be text")
    assert "put the word in quotes" in found


def test_model_rule_error_is_on_the_step(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace("    end: true", "    end: true\n    next: hello"))

    assert only_problem(flows) == (
        "flows/demo.yaml:12: step 'done': an 'end' step cannot also go on"
        " ('next', 'choices', 'ask')"
    )


def test_start_naming_a_missing_step_is_on_the_start_line(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace("start: hello", "start: helo"))

    assert only_problem(flows) == (
        "flows/demo.yaml:5: 'start' names step 'helo', which is not in 'steps'"
    )


def test_source_errors_name_the_key_not_the_union(flows: Path) -> None:
    text = VALID.replace(
        "    end: true", "    end: true\n    source: {url: example.org, checked: 2025-01-02}"
    )
    write(flows, "demo.yaml", text)

    assert only_problem(flows) == (
        "flows/demo.yaml:15: step 'done', 'source', 'url': "
        "'example.org' should be a web address starting with https://"
    )


def test_duplicate_key(flows: Path) -> None:
    write(
        flows, "demo.yaml", VALID.replace("    end: true", '    end: true\n    say: {vi: "Hết."}')
    )

    assert only_problem(flows) == (
        "flows/demo.yaml:15: step 'done': the key 'say' is given twice (first on line 13);"
        " YAML keeps only the last one"
    )


def test_rev_written_by_an_editor_is_replaced(flows: Path) -> None:
    path = write(flows, "demo.yaml", VALID.replace("version: 1", "version: 1\nrev: abc"))

    result = load_flows(flows)

    assert [str(p) for p in result.problems] == [
        "flows/demo.yaml:3: warning: 'rev' is set by the loader from the file's content; remove it"
    ]
    assert result.flows["demo"].rev == hashlib.sha256(path.read_bytes()).hexdigest()[:12]


# ---------------------------------------------------------------- lint within a flow


def test_goto_to_missing_step(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace("goto: done", "goto: doen"))

    assert only_problem(flows) == (
        "flows/demo.yaml:10: step 'hello' goes to 'doen', which does not exist;"
        " did you mean 'done'?"
    )
    assert load_flows(flows).flows == {}


def test_next_to_missing_step(flows: Path) -> None:
    text = VALID.replace(
        '    say: {vi: "Xong."}\n    end: true', '    say: {vi: "Xong."}\n    next: bye'
    )
    write(flows, "demo.yaml", text)

    assert (
        only_problem(flows) == "flows/demo.yaml:14: step 'done' goes to 'bye', which does not exist"
    )


def test_unreachable_step(flows: Path) -> None:
    write(flows, "demo.yaml", VALID + '  lost:\n    say: {vi: "Ở đâu?"}\n    end: true\n')

    assert only_problem(flows) == (
        "flows/demo.yaml:15: step 'lost' is never reached from the start step 'hello'"
    )


def test_step_without_a_way_out(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace("    end: true\n", ""))

    assert only_problem(flows) == (
        "flows/demo.yaml:12: step 'done' has no way out: add next: or end: true"
    )


def test_handoff_and_flow_steps_may_end_the_flow(flows: Path) -> None:
    text = VALID.replace(
        '    say: {vi: "Xong."}\n    end: true',
        "    handoff: {reason: stuck}",
    ).replace("handoff: no_phone}", "goto: other}")
    write(flows, "demo.yaml", text + "  other:\n    flow: other\n")
    write(flows, "other.yaml", OTHER)

    assert problems(flows) == []


def test_branch_without_default_is_a_warning(flows: Path) -> None:
    text = VALID.replace(
        '  done:\n    say: {vi: "Xong."}\n    end: true',
        "  done:\n    branch:\n      - if: {var: age, below: 60}\n        goto: bye\n"
        '  bye:\n    say: {vi: "Tạm biệt."}\n    end: true',
    )
    write(flows, "demo.yaml", text)

    result = load_flows(flows)

    assert [str(p) for p in result.problems] == [
        "flows/demo.yaml:13: warning: step 'done': every branch rule has an 'if', so none may"
        " hold; add a last rule with only 'goto'"
    ]
    assert list(result.flows) == ["demo"]  # warnings do not block loading


def test_placeholder_never_saved_is_a_warning(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace('"Xong."', '"Xong, {name}."'))

    assert problems(flows) == [
        "flows/demo.yaml:13: warning: step 'done', 'say': '{name}' is never saved in this flow;"
        " add 'save: name' to the step that asks for it"
    ]


def test_placeholder_saved_by_a_step_is_fine(flows: Path) -> None:
    text = VALID.replace(
        '      - {label: {vi: "Có"}, goto: done}',
        '      - {label: {vi: "Có"}, goto: done, value: "có"}',
    )
    text = text.replace('    say: {vi: "Chào bạn.', '    save: phone\n    say: {vi: "Chào bạn.')
    write(flows, "demo.yaml", text.replace('"Xong."', '"Xong: {phone}."'))

    assert problems(flows) == []


def test_repeated_choice_label_after_folding(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace('{vi: "Chưa"}', '{vi: "co"}'))

    assert only_problem(flows) == (
        "flows/demo.yaml:11: step 'hello': choices 1 and 2 have the same label 'co';"
        " citizens type labels, so make them differ"
    )


def test_callback_data_must_fit_telegram(flows: Path) -> None:
    flow_id = "f" * 32
    step_id = "s" * 30
    text = VALID.replace("id: demo", f"id: {flow_id}").replace("hello", step_id)
    write(flows, "long.yaml", text)

    found = only_problem(flows)
    assert found.startswith(f"flows/long.yaml:7: step '{step_id}': the button data")
    assert "67 bytes, over Telegram's 64" in found


# ---------------------------------------------------------------- lint across flows


def test_flow_reference_to_missing_flow(flows: Path) -> None:
    text = VALID.replace("handoff: no_phone}", "flow: othr}")
    text = text.replace("    end: true\n", "    next: more\n  more:\n    flow: nowhere\n")
    write(flows, "demo.yaml", text)
    write(flows, "other.yaml", OTHER)

    assert problems(flows) == [
        "flows/demo.yaml:11: step 'hello' enters flow 'othr', which is not in the folder;"
        " did you mean 'other'?",
        "flows/demo.yaml:16: step 'more' enters flow 'nowhere', which is not in the folder",
    ]
    assert list(load_flows(flows).flows) == ["other"]


def test_duplicate_flow_id(flows: Path) -> None:
    write(flows, "a.yaml", VALID)
    write(flows, "b.yaml", VALID.replace("thử nghiệm", "khác").replace('["demo"]', '["other"]'))

    result = load_flows(flows)

    assert [str(p) for p in result.problems] == [
        "flows/b.yaml:1: the flow id 'demo' is already used by flows/a.yaml;"
        " give each flow its own id"
    ]
    assert result.flows["demo"] == load_flow_file(flows / "a.yaml")


def test_duplicate_trigger_after_folding(flows: Path) -> None:
    write(flows, "demo.yaml", VALID)
    write(flows, "other.yaml", OTHER.replace('["khác"]', '["khác", "THU   nghiem"]'))

    assert only_problem(flows) == (
        "flows/other.yaml:4: the trigger 'THU   nghiem' is also a trigger of flow 'demo'"
        " (flows/demo.yaml:4); a trigger must lead to one flow"
    )


def test_lint_without_sources_still_names_the_flow(flows: Path) -> None:
    flow = load_flow_file(
        write(flows, "demo.yaml", VALID.replace("handoff: no_phone", "flow: gone"))
    )

    found = lint({"demo": flow})

    assert [str(p) for p in found] == [
        "<flow demo>:1: step 'hello' enters flow 'gone', which is not in the folder"
    ]


def test_format_problems() -> None:
    found = [
        Problem("flows/b.yaml", 3, "bad"),
        Problem("flows/a.yaml", 9, "odd", "warning"),
        Problem("flows/a.yaml", 2, "worse"),
    ]

    assert format_problems(found) == (
        "flows/a.yaml:2: worse\nflows/a.yaml:9: warning: odd\nflows/b.yaml:3: bad\n"
        "2 errors, 1 warning"
    )
    assert format_problems([]) == ""


# ---------------------------------------------------------------- catalog


def test_catalog_keeps_last_good_version_when_a_file_breaks(
    flows: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(flows, "demo.yaml", VALID)
    catalog = FlowCatalog(flows)
    good = catalog.get("demo")
    assert good is not None and catalog.problems == ()

    path.write_text(VALID.replace("goto: done", "goto: doen"), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="bot.flow.loader"):
        found = catalog.reload()

    assert [str(p) for p in found] == [
        "flows/demo.yaml:10: step 'hello' goes to 'doen', which does not exist;"
        " did you mean 'done'?"
    ]
    assert catalog.get("demo") is good
    assert str(found[0]) in caplog.messages
    assert f"flows/demo.yaml: keeping the last good version (rev {good.rev})" in caplog.messages

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="bot.flow.loader"):
        catalog.reload()
    assert caplog.messages == []  # a problem is logged once, when it appears


def test_catalog_picks_up_a_fixed_file_and_keeps_old_revisions(flows: Path) -> None:
    path = write(flows, "demo.yaml", VALID)
    catalog = FlowCatalog(flows)
    first = catalog.get("demo")
    assert first is not None

    path.write_text("id: demo\n\tbroken", encoding="utf-8")
    catalog.reload()
    path.write_text(VALID.replace('"Xong."', '"Xong rồi."'), encoding="utf-8")
    assert catalog.reload() == ()

    second = catalog.get("demo")
    assert second is not None and second.rev != first.rev
    assert second.steps["done"].say == {"vi": "Xong rồi."}
    assert catalog.revision("demo", first.rev) is first
    assert catalog.revision("demo", second.rev) is second


def test_catalog_drops_a_deleted_file(flows: Path) -> None:
    write(flows, "demo.yaml", VALID)
    other = write(flows, "other.yaml", OTHER)
    catalog = FlowCatalog(flows)
    assert sorted(catalog.flows()) == ["demo", "other"]
    rev = catalog.flows()["other"].rev

    other.unlink()
    catalog.reload()

    assert list(catalog.flows()) == ["demo"]
    assert catalog.get("other") is None
    assert catalog.revision("other", rev) is not None  # sessions on it can finish


def test_catalog_reload_does_nothing_when_nothing_changed(flows: Path) -> None:
    path = write(flows, "demo.yaml", VALID)
    write(flows, "broken.yaml", "id: broken\n\tx: 1\n")
    catalog = FlowCatalog(flows)
    before_flows, before_problems = catalog.flows(), catalog.problems

    assert catalog.reload() == before_problems
    path.write_text(VALID, encoding="utf-8")  # rewritten, same content
    assert catalog.reload() is before_problems

    assert catalog.flows() is before_flows
    assert [str(p) for p in before_problems] == [
        "flows/broken.yaml:2: a tab is used for indentation; use spaces"
    ]


def test_catalog_flow_broken_from_the_start_is_absent(flows: Path) -> None:
    write(flows, "demo.yaml", VALID.replace("goto: done", "goto: doen"))

    catalog = FlowCatalog(flows)

    assert catalog.flows() == {}
    assert len(catalog.problems) == 1


def test_catalog_add_revision(flows: Path, tmp_path: Path) -> None:
    catalog = FlowCatalog(flows)
    old = load_flow_file(write(tmp_path / "snapshot", "demo.yaml", VALID))

    catalog.add_revision(old)

    assert catalog.revision("demo", old.rev) is old
    assert catalog.get("demo") is None  # an old revision is not the current flow
    with pytest.raises(ValueError, match="no 'rev'"):
        catalog.add_revision(old.model_copy(update={"rev": ""}))


def test_catalog_needs_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(ContentError):
        FlowCatalog(tmp_path / "missing")


# ---------------------------------------------------------------- other content files


class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: dict[str, LocalText]
    media: dict[str, LocalText] = {}


def test_load_yaml_model_reads_a_valid_file(flows: Path) -> None:
    path = write(flows, "_messages.yaml", 'messages:\n  welcome: {vi: "Chào bạn."}\n')

    loaded = load_yaml_model(path, Texts, required={"messages": ("welcome",)})

    assert loaded.messages == {"welcome": {"vi": "Chào bạn."}}


def test_load_yaml_model_reports_missing_required_and_unknown_keys(flows: Path) -> None:
    text = 'messages:\n  welcom: {vi: "Chào bạn."}\n  help: {en: "Help"}\nmedai: {}\n'
    path = write(flows, "_messages.yaml", text)

    with pytest.raises(FlowLoadError) as caught:
        load_yaml_model(path, Texts, required={"messages": ("welcome", "help")})

    assert [str(p) for p in caught.value.problems] == [
        "flows/_messages.yaml:1: 'messages' needs the key 'welcome'; is 'welcom' (line 2) it?",
        "flows/_messages.yaml:3: 'messages', 'help': a Vietnamese text ('vi') is required",
        "flows/_messages.yaml:4: unknown key 'medai'; did you mean 'media'?",
    ]


SECRET = """\
id: secret
version: 1
title: {vi: "Bí mật"}
start: ask
steps:
  ask:
    ask: {vi: "Bạn gõ mã OTP vừa nhận vào đây.", en: "Type the code here."}
    expect: {type: EXPECT}
    next: done
  done:
    say: {vi: "Xong."}
    end: true
"""


@pytest.mark.parametrize("expect", ["text", "number"])
def test_an_ask_step_must_never_collect_a_secret(flows: Path, expect: str) -> None:
    write(flows, "secret.yaml", SECRET.replace("EXPECT", expect))
    assert only_problem(flows) == (
        "flows/secret.yaml:7: step 'ask' asks the citizen to type a passcode, password or OTP;"
        " never ask for one: say to type it in the app only"
    )


def test_asking_whether_a_code_arrived_is_fine(flows: Path) -> None:
    text = SECRET.replace("Bạn gõ mã OTP vừa nhận vào đây.", "Bạn đã nhận được mã OTP chưa?")
    write(flows, "secret.yaml", text.replace("EXPECT", "yes_no"))
    assert problems(flows) == []


def test_a_menu_whose_choices_all_open_flows_or_call_a_person_is_fine(flows: Path) -> None:
    write(flows, "other.yaml", OTHER)
    menu = """\
id: menu
version: 1
title: {vi: "Danh mục"}
start: pick
steps:
  pick:
    say: {vi: "Bạn cần gì?"}
    choices:
      - {label: {vi: "Khác"}, flow: other}
      - {label: {vi: "Cần người giúp"}, handoff: asked_human}
"""
    write(flows, "menu.yaml", menu)
    assert problems(flows) == []
