"""CLI groups ``webhooks``, ``consent`` and ``inbound`` (added to ``textrelay`` in ``cli.py``).

Each command calls the same service functions as the REST API and the admin UI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

webhooks_app = typer.Typer(help="Webhooks: inbound (keywords, replies) and feedback.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent per phone number: lookup, set, CSV import and export.",
                          no_args_is_help=True)
inbound_app = typer.Typer(help="Inbound messages.", no_args_is_help=True)

Sandbox = Annotated[str, typer.Option(help="Sandbox name.")]


def _run(work: Any) -> Any:
    """Run ``work(session, sandbox_name)`` in a unit of work; service errors print and exit 1."""
    from textrelay.cli import _context, _fail

    ctx = _context()
    try:
        with ctx.db.session() as session:
            return work(ctx, session)
    except Exception as exc:
        _fail(exc)


def _box(session: Any, name: str) -> Any:
    from textrelay.services import sandboxes

    return sandboxes.get_by_name(session, name)


def _base_url() -> str:
    from textrelay.config import get_settings

    settings = get_settings()
    return settings.public_url or f"http://{settings.host}:{settings.port}"


@webhooks_app.command("list")
def webhooks_list(sandbox: Sandbox = "prod") -> None:
    """Webhooks of a sandbox with their public URLs (paste them into the provider's console)."""
    from textrelay.cli import console
    from textrelay.services import webhooks
    from textrelay.store.models import Credential

    def work(ctx: Any, session: Any) -> Table:
        table = Table("id", "name", "type", "credential", "sender number", "policy", "url")
        for hook in webhooks.list_all(session, _box(session, sandbox)):
            view = webhooks.view(hook, session.get(Credential, hook.credential_id), _base_url())
            table.add_row(view["id"], view["name"], view["type"], view["credential_name"] or "",
                          view["sender_number"] or "", view.get("revocation_policy", ""), view["url"])
        return table

    console.print(_run(work))


@webhooks_app.command("show")
def webhooks_show(webhook_id: str, sandbox: Sandbox = "prod") -> None:
    """One webhook as JSON: keywords per category, replies, policy."""
    from textrelay.cli import console
    from textrelay.services import webhooks
    from textrelay.store.models import Credential

    def work(ctx: Any, session: Any) -> dict[str, Any]:
        hook = webhooks.get(session, _box(session, sandbox), webhook_id)
        return webhooks.view(hook, session.get(Credential, hook.credential_id), _base_url())

    console.print_json(json.dumps(_run(work)))


@webhooks_app.command("update")
def webhooks_update(
    webhook_id: str,
    changes: Annotated[str, typer.Argument(help='JSON, as PATCH /api/v1/webhooks/{id}: '
                                           '\'{"keywords": {"opt_out": ["STOP", "ARRET"]}}\'')],
    sandbox: Sandbox = "prod",
) -> None:
    """Edit a webhook (keywords, replies, default reply, revocation policy, name, sender number)."""
    from pydantic import ValidationError

    from textrelay.cli import console, err
    from textrelay.services import webhooks

    try:
        data = webhooks.WebhookUpdate.model_validate_json(changes)
    except ValidationError as exc:
        for error in exc.errors():
            err.print(f"[red]error:[/red] {'.'.join(str(p) for p in error['loc'])}: {error['msg']}")
        raise typer.Exit(1) from None
    _run(lambda ctx, session: webhooks.update(session, _box(session, sandbox), webhook_id, data))
    console.print(f"webhook {webhook_id} updated")


@consent_app.command("get")
def consent_get(number: str, sandbox: Sandbox = "prod") -> None:
    """A number's consent and its full history."""
    from textrelay.cli import console
    from textrelay.services import consent

    view = _run(lambda ctx, session: consent.lookup(session, _box(session, sandbox), number))
    console.print(f"{view['phone_number']}: [bold]{view['status']}[/bold]"
                  + (f"  blocked senders: {', '.join(view['blocked_senders'])}" if view["blocked_senders"] else ""))
    table = Table("at", "status", "source", "sender number", "detail")
    for event in view["history"]:
        table.add_row(event["at"], event["status"], event["source"], event["sender_number"] or "",
                      event["detail"] or "")
    console.print(table)


@consent_app.command("set")
def consent_set(
    number: str,
    status: Annotated[str, typer.Argument(help="opted_in, opted_out or pending")],
    sender: Annotated[str | None, typer.Option(help="The sender number the change concerns.")] = None,
    detail: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
    sandbox: Sandbox = "prod",
) -> None:
    """Set a number's consent (source: api)."""
    from pydantic import ValidationError

    from textrelay.cli import console, err
    from textrelay.services import consent

    try:
        data = consent.ConsentSet(status=status, sender_number=sender, detail=detail)  # type: ignore[arg-type]
    except ValidationError:
        err.print("[red]error:[/red] status: one of opted_in, opted_out, pending")
        raise typer.Exit(1) from None
    row = _run(lambda ctx, session: consent.set_by_api(session, _box(session, sandbox), number, data, actor="cli"))
    console.print(f"{row.phone_number}: {row.status}")


@consent_app.command("import")
def consent_import(path: Annotated[Path, typer.Argument(help="CSV with phone_number and status columns; "
                                                        "'-' reads standard input.")],
                   sandbox: Sandbox = "prod") -> None:
    """Import consents from CSV, all or nothing."""
    from textrelay.cli import console
    from textrelay.errors import ValidationFailed
    from textrelay.services import consent

    def work(ctx: Any, session: Any) -> dict[str, Any]:
        job = consent.ConsentImport(session, _box(session, sandbox))
        stream = sys.stdin if str(path) == "-" else open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
        try:
            chunk: list[str] = []
            for line in stream:
                chunk.append(line)
                if len(chunk) >= 1000:
                    job.feed(chunk)
                    chunk = []
            job.feed(chunk)
        finally:
            if stream is not sys.stdin:
                stream.close()
        try:
            return job.finish()
        except ValidationFailed as exc:
            for error in exc.errors:
                console.print(f"  {error['field']}: {error['message']}")
            raise

    counts = _run(work)
    console.print(f"{counts['rows']} rows: {counts['changed']} changed, {counts['unchanged']} unchanged")


@consent_app.command("export")
def consent_export(status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
                   sandbox: Sandbox = "prod") -> None:
    """Every consent of the sandbox as CSV on standard output."""
    from textrelay.services import consent

    def work(ctx: Any, session: Any) -> None:
        for text in consent.export_csv(session, _box(session, sandbox), status):
            sys.stdout.write(text)

    _run(work)


@inbound_app.command("list")
def inbound_list(
    sandbox: Sandbox = "prod",
    from_number: Annotated[str | None, typer.Option("--from", help="Only from this number.")] = None,
    category: Annotated[str | None, typer.Option(help="opt_out, opt_in, double_opt_in, help, custom or none")]
    = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """The newest inbound messages."""
    from textrelay.cli import console
    from textrelay.services import inbound_messages

    def work(ctx: Any, session: Any) -> Table:
        filters = inbound_messages.Filters(from_number=from_number, category=category)
        rows, _ = inbound_messages.list_page(session, _box(session, sandbox), filters, limit, None)
        table = Table("received", "from", "to", "body", "matched", "consent", "reply")
        for row in rows:
            table.add_row(row.received_at.isoformat(timespec="seconds"), row.from_number, row.to_number,
                          (row.body or "")[:60] + (f" (+{len(row.media)} media)" if row.media else ""),
                          row.matched_category or "", row.consent_change or "", "yes" if row.reply else "")
        return table

    console.print(_run(work))


@inbound_app.command("forward")
def inbound_forward(
    url: Annotated[str | None, typer.Argument(help="Where to POST events; omit to show the current setting.")]
    = None,
    secret: Annotated[str | None, typer.Option(help="Signing secret (16+ characters); generated if omitted "
                                               "on first set, kept otherwise.")] = None,
    events: Annotated[str, typer.Option(help="Comma-separated: inbound.received, consent.changed.")]
    = "inbound.received,consent.changed",
    disable: Annotated[bool, typer.Option(help="Keep the destination but stop forwarding.")] = False,
    sandbox: Sandbox = "prod",
) -> None:
    """Forward inbound messages and consent changes to a URL (signed with HMAC-SHA256, retried)."""
    from pydantic import ValidationError

    from textrelay.cli import console, err
    from textrelay.inbound import events as events_out

    if url is None:
        view = _run(lambda ctx, session: events_out.destination_view(
            events_out.get_destination(session, _box(session, sandbox)), _box(session, sandbox)))
        console.print_json(json.dumps(view))
        return
    try:
        data = events_out.DestinationSet(url=url, secret=secret, enabled=not disable,  # type: ignore[arg-type]
                                         events=[e.strip() for e in events.split(",") if e.strip()])
    except ValidationError as exc:
        for error in exc.errors():
            err.print(f"[red]error:[/red] {'.'.join(str(p) for p in error['loc'])}: {error['msg']}")
        raise typer.Exit(1) from None

    def work(ctx: Any, session: Any) -> dict[str, Any]:
        box = _box(session, sandbox)
        row, generated = events_out.set_destination(session, ctx.keyring, box, data)
        return events_out.destination_view(row, box, generated)

    view = _run(work)
    console.print(f"forwarding {', '.join(view['events'])} to {view['url']}"
                  + ("" if view["enabled"] else " (disabled)"))
    if view.get("secret_shown_once"):
        console.print(f"signing secret (shown once): {view['secret']}")
