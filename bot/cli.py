"""The `citizen-bot` command: serve, chat, validate, test-flows, route, stats, graph."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bot.cli_console import console_app
from bot.cli_volunteers import volunteers_app
from bot.config import get_settings
from bot.errors import CitizenBotError, FlowLoadError, Problem

app = typer.Typer(
    help="citizen-bot: helps citizens through VNeID and online public services.",
    no_args_is_help=True,
    add_completion=False,
)

FlowsOption = Annotated[Path | None, typer.Option(help="Folder of flows (default: FLOWS_DIR).")]
KnowledgeOption = Annotated[
    Path | None, typer.Option(help="Folder of knowledge (default: KNOWLEDGE_DIR).")
]


class GraphFormat(StrEnum):
    MERMAID = "mermaid"
    SVG = "svg"


def _dirs(flows: Path | None, knowledge: Path | None) -> tuple[Path, Path]:
    settings = get_settings()
    return flows or settings.flows_dir, knowledge or settings.knowledge_dir


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence logging while content loads (the command prints what matters itself)."""
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the web server: web chat at /, messenger webhooks, console."""
    import uvicorn

    from bot.logs import setup_logging

    settings = get_settings()
    setup_logging(settings.log_level)
    uvicorn.run(
        "webhook.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep setup_logging's JSON lines for uvicorn too
        access_log=False,  # client addresses are personal data; bot.handled logs updates
    )


@app.command()
def chat(
    user: Annotated[str, typer.Option(help="A name for this terminal conversation.")] = "local",
) -> None:
    """Talk to the bot in the terminal (buttons are shown as numbers)."""
    from bot.channels.console import run_console

    try:
        run_console(user=user)
    except CitizenBotError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def validate(
    flows: FlowsOption = None,
    knowledge: KnowledgeOption = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (exit 1) on warnings too, not only errors.")
    ] = False,
    max_age: Annotated[
        int | None,
        typer.Option(
            "--max-age",
            min=1,
            help="Warn on sources checked more than this many days ago"
            " (default: CONTENT_SOURCE_MAX_AGE_DAYS, 180).",
        ),
    ] = None,
) -> None:
    """Check every flow and knowledge file (answers, safety cues, messages, commands);
    print file:line: message for each problem. Warnings (also: messages longer than a
    phone screen, fees or deadlines without a source, old sources) do not fail the run
    unless --strict."""
    from bot.content import ContentLibrary
    from bot.flow.editorial import Rules, editorial_warnings

    settings = get_settings()
    flows_dir, knowledge_dir = _dirs(flows, knowledge)
    library: ContentLibrary | None = None
    try:
        with _quiet():  # problems are printed below, once
            library = ContentLibrary(flows_dir=flows_dir, knowledge_dir=knowledge_dir)
        problems = library.problems
    except FlowLoadError as exc:
        problems = exc.problems
    except CitizenBotError as exc:  # a folder that does not exist
        raise _fail(str(exc)) from exc
    rules = Rules(
        max_chars=settings.content_max_message_chars,
        max_lines=settings.content_max_message_lines,
        max_age_days=max_age or settings.content_source_max_age_days,
    )
    problems = tuple(
        sorted(set(problems) | set(editorial_warnings(flows_dir, knowledge_dir, rules)))
    )
    _print_problems(problems)
    errors = [p for p in problems if p.severity == "error"]
    warnings = len(problems) - len(errors)
    count = len(library.catalog.flows()) if library else 0
    answers = len(library.knowledge) if library else 0
    if errors:
        raise _fail(
            f"{len(errors)} error(s), {warnings} warning(s) in content; {count} flow(s) loaded."
        )
    if strict and warnings:
        raise _fail(
            f"{warnings} warning(s) in content (--strict); {count} flow(s), {answers} answer(s)."
        )
    typer.echo(f"OK: {count} flow(s), {answers} answer(s), {warnings} warning(s).")


def _print_problems(problems: tuple[Problem, ...]) -> None:
    for problem in problems:
        typer.echo(str(problem))


@app.command("test-flows")
def test_flows(
    flows: FlowsOption = None,
    knowledge: KnowledgeOption = None,
    tests: Annotated[
        Path | None, typer.Option(help="Folder of tests (default: FLOWS/tests).")
    ] = None,
) -> None:
    """Run the YAML conversation tests in flows/tests/."""
    from bot.content import ContentLibrary
    from bot.flow.testing import report, run_dir

    flows_dir, knowledge_dir = _dirs(flows, knowledge)
    try:
        library = ContentLibrary(flows_dir=flows_dir, knowledge_dir=knowledge_dir)
    except FlowLoadError as exc:
        _print_problems(exc.problems)
        raise _fail("content does not load; fix the problems above first") from exc
    errors = [p for p in library.problems if p.severity == "error"]
    _print_problems(tuple(errors))
    results = run_dir(tests or flows_dir / "tests", library.content())
    typer.echo(report(results))
    if errors or not results or not all(r.passed for r in results):
        raise typer.Exit(code=1)


@app.command()
def route(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    flows: FlowsOption = None,
    knowledge: KnowledgeOption = None,
) -> None:
    """Read messages (one a line) on stdin; print where each would be routed.

    With --json, one object a line: {"text", "kind", "id", "score"}, and for kind
    "clarify" also "candidates": the ids offered as "did you mean" (id is then null)."""
    from bot.content import ContentLibrary

    flows_dir, knowledge_dir = _dirs(flows, knowledge)
    with _quiet():  # `validate` is where content problems are reported
        library = ContentLibrary(flows_dir=flows_dir, knowledge_dir=knowledge_dir)
    router = library.content().router
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        decided = router.route(text)
        offered = [target for _, target, _ in decided.candidates]
        if as_json:
            out: dict[str, object] = {
                "text": text,
                "kind": decided.kind,
                "id": decided.id,
                "score": round(decided.score, 1),
            }
            if decided.kind == "clarify":
                out["candidates"] = offered
            typer.echo(json.dumps(out, ensure_ascii=False))
        else:
            shown = decided.id or ("|".join(offered) if decided.kind == "clarify" else "-")
            typer.echo(f"{decided.kind:9} {shown:28} {decided.score:5.1f}  {text}")


@app.command()
def stats() -> None:
    """Print who was helped and where people get stuck, from the database."""
    from bot.store import Store

    store = Store(get_settings().database_url)
    store.create_all()
    typer.echo(json.dumps(store.stats(), ensure_ascii=False, indent=2, default=str))


@app.command()
def graph(
    flow_id: Annotated[str, typer.Argument(help="The flow to draw.")],
    flows: FlowsOption = None,
    knowledge: KnowledgeOption = None,
    fmt: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="mermaid (text) or svg (a picture).")
    ] = GraphFormat.MERMAID,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    lang: Annotated[str, typer.Option(help="Language of the labels in the SVG: vi or en.")] = "vi",
) -> None:
    """Draw a flow: Mermaid text (default), or an SVG picture to open in a browser
    (citizen-bot graph vneid_activate --format svg -o vneid_activate.svg)."""
    from bot.content import ContentLibrary
    from bot.flow.graph import mermaid, to_svg

    flows_dir, knowledge_dir = _dirs(flows, knowledge)
    with _quiet():  # `validate` is where content problems are reported
        catalog = ContentLibrary(flows_dir=flows_dir, knowledge_dir=knowledge_dir).catalog
    flow = catalog.get(flow_id)
    if flow is None:
        raise _fail(f"no flow with id '{flow_id}' in {flows_dir}")
    drawn = to_svg(flow, lang) if fmt is GraphFormat.SVG else mermaid(flow)
    if output is None:
        typer.echo(drawn, nl=False)
        return
    try:
        output.write_text(drawn, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror}") from exc
    typer.echo(f"{output}: {fmt.value} of flow '{flow.id}', {len(flow.steps)} step(s).")


app.add_typer(volunteers_app, name="volunteers")
app.add_typer(console_app, name="console")

if __name__ == "__main__":  # pragma: no cover
    app()
