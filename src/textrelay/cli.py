"""The ``textrelay`` command."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from textrelay.config import Settings, get_settings
from textrelay.inbound.commands import consent_app, inbound_app, webhooks_app

app = typer.Typer(help="textrelay: SMS, MMS and RCS for customer journeys.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Admin UI logins.", no_args_is_help=True)
secrets_app = typer.Typer(help="Encryption keys for secrets at rest.", no_args_is_help=True)
sandboxes_app = typer.Typer(help="Sandboxes.", no_args_is_help=True)
credentials_app = typer.Typer(help="API credentials.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(secrets_app, name="secrets")
app.add_typer(sandboxes_app, name="sandboxes")
app.add_typer(credentials_app, name="credentials")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(consent_app, name="consent")
app.add_typer(inbound_app, name="inbound")
console = Console()
err = Console(stderr=True)


def _context():  # type: ignore[no-untyped-def]
    from textrelay.services.context import Context

    ctx = Context.from_settings(get_settings())
    ctx.db.upgrade()
    return ctx


def _fail(exc: Exception) -> None:
    from textrelay.errors import TextrelayError

    if isinstance(exc, TextrelayError):
        err.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None
    raise exc


@contextmanager
def _unit_of_work() -> Iterator[tuple[Any, Any]]:
    """The context and one store transaction; a service error ends the command with its message."""
    from textrelay.errors import TextrelayError

    ctx = _context()
    try:
        with ctx.db.session() as session:
            yield ctx, session
    except TextrelayError as exc:
        err.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    worker: Annotated[bool, typer.Option(help="Run a delivery worker in this process.")] = True,
) -> None:
    """Run the API, the admin UI and a delivery worker in one process."""
    import uvicorn

    from textrelay import logging as tr_logging
    from textrelay.api.app import create_app

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**{**get_settings().model_dump(), **overrides})
    if not settings.public_url:
        settings.public_url = f"http://{settings.host}:{settings.port}"
    tr_logging.configure(settings.log_level)
    console.print(f"textrelay listening on http://{settings.host}:{settings.port}  "
                  f"(database: {settings.resolved_database_url.split('://')[0]}, data: {settings.data_dir})")
    application = create_app(settings, run_worker=worker)
    uvicorn.run(application, host=settings.host, port=settings.port, log_config=None,
                access_log=False, proxy_headers=settings.trust_proxy_headers)


@app.command()
def worker() -> None:
    """Run a delivery worker: send queued messages until stopped (SIGTERM or Ctrl-C)."""
    from textrelay import logging as tr_logging
    from textrelay.delivery import worker as delivery_worker

    settings = get_settings()
    tr_logging.configure(settings.log_level)
    ctx = _context()
    if not settings.public_url:
        err.print("[yellow]warning:[/yellow] TEXTRELAY_PUBLIC_URL is not set: messages go out without a "
                  "status callback, so no delivery receipts will arrive")
    delivery_worker.run_forever(ctx)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest version."""
    _context()
    console.print("database is up to date")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    role: Annotated[str, typer.Option(help="admin or sender.")] = "admin",
    sandbox: Annotated[str | None, typer.Option(help="Limit the key to this sandbox.")] = None,
) -> None:
    """Create an API key; it is printed once."""
    from textrelay.services import access, bootstrap

    with _unit_of_work() as (_, session):
        bootstrap.run(session)
        key, token = access.create_key(session, name, role, sandbox)
    console.print(f"API key '{key.name}' ({key.role}{', sandbox ' + sandbox if sandbox else ''}):")
    print(token)


@keys_app.command("list")
def keys_list() -> None:
    from textrelay.services import access

    ctx = _context()
    with ctx.db.session() as session:
        rows = access.list_keys(session)
        table = Table("id", "name", "role", "prefix", "sandbox")
        for key in rows:
            table.add_row(key.id, key.name, key.role, key.prefix + "…", key.sandbox_id or "all")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    from textrelay.services import access

    with _unit_of_work() as (_, session):
        access.revoke_key(session, key_id)
    console.print("revoked")


@users_app.command("set-password")
def users_set_password(
    username: Annotated[str, typer.Argument()] = "admin",
    password: Annotated[str | None, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = None,
) -> None:
    """Create an admin UI login, or change its password."""
    from textrelay.services import access

    with _unit_of_work() as (_, session):
        access.create_user(session, username, password or "")
    console.print(f"login '{username}' saved")


@secrets_app.command("rotate")
def secrets_rotate(
    retire: Annotated[bool, typer.Option(help="Afterwards, drop every key but the new one.")] = False,
) -> None:
    """Add a new encryption key and re-encrypt every stored secret with it, without downtime."""
    from textrelay.services import secret_rotation

    ctx = _context()
    try:
        count = secret_rotation.rotate(ctx, retire=retire)
    except Exception as exc:
        _fail(exc)
    console.print(f"re-encrypted {count} secret(s) under a new key"
                  + ("; old keys retired" if retire else "; old keys kept for running processes"))


@sandboxes_app.command("list")
def sandboxes_list() -> None:
    from textrelay.services import sandboxes

    ctx = _context()
    with ctx.db.session() as session:
        for sandbox in sandboxes.list_all(session):
            console.print(sandbox.name)


@sandboxes_app.command("create")
def sandboxes_create(name: str) -> None:
    from textrelay.services import sandboxes

    with _unit_of_work() as (_, session):
        sandboxes.create(session, name)
    console.print(f"sandbox '{name}' created")


@sandboxes_app.command("delete")
def sandboxes_delete(name: str) -> None:
    from textrelay.services import sandboxes

    with _unit_of_work() as (_, session):
        sandboxes.delete(session, name)
    console.print(f"sandbox '{name}' deleted")


@credentials_app.command("list")
def credentials_list(sandbox: Annotated[str, typer.Option()] = "prod") -> None:
    from textrelay.services import credentials, sandboxes

    with _unit_of_work() as (_, session):
        box = sandboxes.get_by_name(session, sandbox)
        table = Table("id", "name", "vendor", "account", "inbound number", "token")
        for c in credentials.list_all(session, box):
            table.add_row(c.id, c.name, c.vendor, c.account_key, c.inbound_number or "",
                          (c.secret_hints or {}).get("auth_token") or "")
    console.print(table)


@credentials_app.command("create-twilio")
def credentials_create_twilio(
    name: Annotated[str, typer.Option()],
    account_sid: Annotated[str, typer.Option()],
    auth_token: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    messaging_service_sid: Annotated[str | None, typer.Option()] = None,
    inbound_number: Annotated[str | None, typer.Option()] = None,
    api_base_url: Annotated[str | None, typer.Option()] = None,
    sandbox: Annotated[str, typer.Option()] = "prod",
) -> None:
    """Register a Twilio API credential."""
    from pydantic import ValidationError

    from textrelay.services import credentials, sandboxes

    ctx = _context()
    try:
        data = credentials.TwilioCredentialCreate(
            name=name, account_sid=account_sid, auth_token=auth_token,
            messaging_service_sid=messaging_service_sid, inbound_number=inbound_number,
            api_base_url=api_base_url)
        with ctx.db.session() as session:
            cred = credentials.create(session, ctx.keyring, sandboxes.get_by_name(session, sandbox), data)
    except ValidationError as exc:
        for e in exc.errors():
            err.print(f"[red]error:[/red] {'.'.join(map(str, e['loc']))}: {e['msg']}")
        raise typer.Exit(1) from None
    except Exception as exc:
        _fail(exc)
    console.print(f"credential '{cred.name}' created: {cred.id}")


@credentials_app.command("create-custom")
def credentials_create_custom(
    config: Annotated[Path, typer.Argument(help="JSON file: the body of POST /api/v1/credentials with "
                                                "vendor custom (secrets included; they are stored encrypted).")],
    sandbox: Annotated[str, typer.Option()] = "prod",
) -> None:
    """Register a custom API credential (any JSON provider, RCS included) from a JSON file."""
    import json

    from textrelay.services import credentials, custom_credentials, sandboxes

    ctx = _context()
    try:
        raw = json.loads(config.read_text())
        if not isinstance(raw, dict):
            raise ValueError("the file must hold a JSON object")
        data = custom_credentials.parse_create({"vendor": "custom", **raw})
        with ctx.db.session() as session:
            cred = credentials.create(session, ctx.keyring, sandboxes.get_by_name(session, sandbox), data)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {config}: {exc}")
        raise typer.Exit(1) from None
    except Exception as exc:
        _fail(exc)
    console.print(f"credential '{cred.name}' created: {cred.id}")


@credentials_app.command("verify")
def credentials_verify(
    credential_id: str,
    to: Annotated[str | None, typer.Option(help="Send a test message to this number.")] = None,
    body: Annotated[str | None, typer.Option(help="Text of the test message.")] = None,
    sandbox: Annotated[str, typer.Option()] = "prod",
) -> None:
    """Check a credential against its provider; optionally send a test message."""
    from textrelay.services import credentials, sandboxes

    ctx = _context()
    try:
        with ctx.db.session() as session:
            box = sandboxes.get_by_name(session, sandbox)
            cred = credentials.get(session, box, credential_id)
        result = asyncio.run(credentials.verify(cred, ctx.keyring, credentials.VerifyRequest(to=to, body=body)))
        with ctx.db.session() as session:
            credentials.record_verification(session, box, credential_id, result)
    except Exception as exc:
        _fail(exc)
    for check in result["checks"]:
        mark = "[green]ok[/green]" if check["ok"] else "[red]failed[/red]"
        console.print(f"{check['check']}: {mark}  {check['detail']}")
    raise typer.Exit(0 if result["ok"] else 1)


@app.command()
def simulator(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8099,
    account: Annotated[list[str] | None, typer.Option(help="AccountSid:AuthToken; repeatable.")] = None,
    callback_delay: Annotated[float, typer.Option(help="Seconds between status callbacks.")] = 0.05,
    mode: Annotated[str, typer.Option(help="twilio, or custom: a generic JSON provider for custom "
                                           "credentials and RCS.")] = "twilio",
    custom_config: Annotated[Path | None, typer.Option(help="custom mode: JSON file of settings "
                                                            "(auth, feedback_url, inbound_url, ...).")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="custom mode: serve HTTPS with this PEM certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="custom mode: the certificate's PEM key.")] = None,
    client_ca: Annotated[Path | None, typer.Option(help="custom mode: require client certificates "
                                                        "issued by this CA (mTLS).")] = None,
) -> None:
    """Run the Twilio-compatible simulator, or with --mode custom a generic JSON provider."""
    if mode == "custom":
        _custom_simulator(host, port, custom_config, tls_cert, tls_key, client_ca)
        return
    if mode != "twilio":
        err.print("[red]error:[/red] --mode is twilio or custom")
        raise typer.Exit(2)
    from textrelay.simulator import run

    pairs = []
    for item in account or []:
        sid, _, token = item.partition(":")
        if not sid or not token:
            err.print("[red]error:[/red] --account takes AccountSid:AuthToken")
            raise typer.Exit(2)
        pairs.append((sid, token))
    run(host=host, port=port, accounts=pairs, callback_delay=callback_delay)


def _custom_simulator(host: str, port: int, config_file: Path | None, tls_cert: Path | None,
                      tls_key: Path | None, client_ca: Path | None) -> None:
    import json

    from textrelay.simulator.custom import CustomSimConfig, TlsFiles, run

    config = CustomSimConfig()
    if config_file is not None:
        try:
            data = json.loads(config_file.read_text())
            config = CustomSimConfig(**data)
        except (OSError, ValueError, TypeError) as exc:
            err.print(f"[red]error:[/red] --custom-config: {exc}")
            raise typer.Exit(2) from None
    if bool(tls_cert) != bool(tls_key):
        err.print("[red]error:[/red] --tls-cert and --tls-key go together")
        raise typer.Exit(2)
    tls = TlsFiles(tls_cert, tls_key, client_ca) if tls_cert and tls_key else None
    run(host=host, port=port, config=config, tls=tls)


# ---- channel configurations, sending and campaigns ---------------------------------------------

channel_configurations_app = typer.Typer(help="Channel configurations.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns: one template to a whole audience.", no_args_is_help=True)
app.add_typer(channel_configurations_app, name="channel-configurations")
app.add_typer(campaign_app, name="campaign")
SandboxOption = Annotated[str, typer.Option(help="Sandbox name.")]


def _invalid_input(exc: Exception) -> None:
    """Pydantic validation errors as one line per field, like the API's problem details."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        for e in exc.errors():
            err.print(f"[red]error:[/red] {'.'.join(map(str, e['loc']))}: {e['msg']}")
        raise typer.Exit(1) from None
    _fail(exc)


@channel_configurations_app.command("list")
def channel_configurations_list(sandbox: SandboxOption = "prod") -> None:
    from textrelay.services import channel_configurations as configs
    from textrelay.services import sandboxes

    with _unit_of_work() as (_, session):
        rows = configs.list_all(session, sandboxes.get_by_name(session, sandbox))
        names = configs.credential_names(session, rows)
        table = Table("id", "name", "channel", "type", "sender", "credential", "status")
        for c in rows:
            table.add_row(c.id, c.name, c.channel, c.sms_type, c.sender_number or "(messaging service)",
                          names.get(c.credential_id, c.credential_id), c.status)
    console.print(table)


@channel_configurations_app.command("create")
def channel_configurations_create(
    name: Annotated[str, typer.Option()],
    credential: Annotated[str, typer.Option(help="API credential id.")],
    sender_number: Annotated[str | None, typer.Option(help="E.164, short code or alphanumeric id.")] = None,
    channel: Annotated[str, typer.Option(help="sms, mms or rcs.")] = "sms",
    sms_type: Annotated[str, typer.Option(help="marketing or transactional.")] = "marketing",
    execution_field: Annotated[str, typer.Option(help="Profile attribute holding the number.")] = "mobilePhone",
    shortening_domain: Annotated[str | None, typer.Option()] = None,
    rate_limit_mps: Annotated[float | None, typer.Option(help="Messages per second for this sender.")] = None,
    status: Annotated[str, typer.Option(help="draft or active.")] = "draft",
    sandbox: SandboxOption = "prod",
) -> None:
    """Create a channel configuration."""
    from textrelay.services import channel_configurations as configs
    from textrelay.services import sandboxes

    ctx = _context()
    try:
        data = configs.ChannelConfigurationCreate(
            name=name, credential_id=credential, sender_number=sender_number, channel=channel, sms_type=sms_type,
            execution_field=execution_field, shortening_domain=shortening_domain, rate_limit_mps=rate_limit_mps,
            status=status)
        with ctx.db.session() as session:
            config = configs.create(session, sandboxes.get_by_name(session, sandbox), data)
    except Exception as exc:
        _invalid_input(exc)
    console.print(f"channel configuration '{config.name}' created ({config.status}): {config.id}")


@channel_configurations_app.command("update")
def channel_configurations_update(
    config_id: str,
    status: Annotated[str | None, typer.Option(help="draft or active.")] = None,
    sender_number: Annotated[str | None, typer.Option()] = None,
    rate_limit_mps: Annotated[float | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option()] = None,
    sandbox: SandboxOption = "prod",
) -> None:
    """Change a channel configuration (only the options given)."""
    from textrelay.services import channel_configurations as configs
    from textrelay.services import sandboxes

    ctx = _context()
    given = {k: v for k, v in {"status": status, "sender_number": sender_number, "rate_limit_mps": rate_limit_mps,
                               "name": name}.items() if v is not None}
    try:
        data = configs.ChannelConfigurationUpdate(**given)
        with ctx.db.session() as session:
            config = configs.update(session, sandboxes.get_by_name(session, sandbox), config_id, data)
    except Exception as exc:
        _invalid_input(exc)
    console.print(f"channel configuration '{config.name}' updated ({config.status})")


@channel_configurations_app.command("delete")
def channel_configurations_delete(config_id: str, sandbox: SandboxOption = "prod") -> None:
    from textrelay.services import channel_configurations as configs
    from textrelay.services import sandboxes

    with _unit_of_work() as (_, session):
        configs.delete(session, sandboxes.get_by_name(session, sandbox), config_id)
    console.print("deleted")


@app.command()
def send(
    configuration: Annotated[str, typer.Option(help="Channel configuration id or name.")],
    body: Annotated[str, typer.Option(help="A template: 'Hi {{profile.firstName}}'.")] = "",
    to: Annotated[str | None, typer.Option(help="E.164 number (else the profile's execution field).")] = None,
    profile: Annotated[str | None, typer.Option(help="Profile as JSON.")] = None,
    media_url: Annotated[list[str] | None, typer.Option(help="MMS media URL; repeatable.")] = None,
    validity_period: Annotated[int, typer.Option(help="Seconds it may wait to be sent.")] = 36000,
    idempotency_key: Annotated[str | None, typer.Option()] = None,
    sandbox: SandboxOption = "prod",
) -> None:
    """Queue one message (a worker sends it: textrelay serve, or textrelay worker)."""
    import json

    from textrelay.services import messages, sandboxes

    ctx = _context()
    try:
        data = messages.SendRequest(
            channel_configuration=configuration, to=to, body=body, media_urls=media_url or None,
            profile=json.loads(profile) if profile else None, validity_period=validity_period)
        with ctx.db.session() as session:
            result = messages.send(session, sandboxes.get_by_name(session, sandbox), data, idempotency_key)
    except json.JSONDecodeError as exc:
        err.print(f"[red]error:[/red] --profile is not JSON: {exc}")
        raise typer.Exit(1) from None
    except Exception as exc:
        _invalid_input(exc)
    answer = result.body
    colour = "yellow" if answer["status"] == "excluded" else "green"
    console.print(f"message {answer['id']} to {answer['to']}: [{colour}]{answer['status']}[/{colour}]  "
                  f"({answer['segments']} segment(s), {answer['encoding']}, {answer['characters']} characters)"
                  + (f"  reason: {answer['excluded_reason']}" if answer.get("excluded_reason") else "")
                  + ("  (replayed)" if result.replayed else ""))


@campaign_app.command("create")
def campaign_create(
    name: Annotated[str, typer.Option()],
    configuration: Annotated[str, typer.Option(help="Channel configuration id or name.")],
    body: Annotated[str, typer.Option(help="A template, rendered per audience member.")],
    media_url: Annotated[list[str] | None, typer.Option(help="MMS media URL; repeatable.")] = None,
    sandbox: SandboxOption = "prod",
) -> None:
    """Create a draft campaign; then upload an audience and start it."""
    from textrelay.services import campaigns, sandboxes

    ctx = _context()
    try:
        data = campaigns.CampaignCreate(name=name, channel_configuration=configuration, body=body,
                                        media_urls=media_url or None)
        with ctx.db.session() as session:
            campaign = campaigns.create(session, sandboxes.get_by_name(session, sandbox), data)
    except Exception as exc:
        _invalid_input(exc)
    console.print(f"campaign '{campaign.name}' created (draft): {campaign.id}")


@campaign_app.command("upload")
def campaign_upload(
    campaign_id: str,
    csv_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with a phone column.")],
    phone_column: Annotated[str | None, typer.Option(help="Default: 'phone', else the execution field.")] = None,
    sandbox: SandboxOption = "prod",
) -> None:
    """Add the rows of a CSV file to a draft campaign's audience (streamed)."""
    from textrelay.services import campaigns, sandboxes

    ctx = _context()
    try:
        with ctx.db.session() as session:
            box = sandboxes.get_by_name(session, sandbox)
        report = campaigns.import_csv_file(ctx.db, box, campaign_id, str(csv_file), phone_column)
    except Exception as exc:
        _fail(exc)
    console.print(f"{report.accepted} member(s) added, {report.rejected} rejected; "
                  f"audience is now {report.audience_size}")
    for row in report.rejected_rows:
        err.print(f"  line {row['line']}: {row['reason']}")


def _campaign_progress(ctx, sandbox: str, campaign_id: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    from textrelay.services import campaigns, sandboxes

    with ctx.db.session() as session:
        campaign = campaigns.get(session, sandboxes.get_by_name(session, sandbox), campaign_id)
        return campaigns.progress(session, campaign)


@campaign_app.command("start")
def campaign_start(
    campaign_id: str,
    wait: Annotated[bool, typer.Option(help="Show a progress bar until the campaign completes.")] = False,
    sandbox: SandboxOption = "prod",
) -> None:
    """Start a draft campaign (its template is checked against the first member)."""
    from textrelay.services import campaigns, sandboxes

    with _unit_of_work() as (ctx, session):
        campaign = campaigns.start(session, sandboxes.get_by_name(session, sandbox), campaign_id)
    console.print(f"campaign '{campaign.name}' is running ({campaign.audience_size} member(s))")
    if wait:
        _wait_for_campaign(ctx, sandbox, campaign_id)


def _wait_for_campaign(ctx, sandbox: str, campaign_id: str) -> None:  # type: ignore[no-untyped-def]
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console.print("[dim]a worker sends it: textrelay serve, or textrelay worker[/dim]")
    state = _campaign_progress(ctx, sandbox, campaign_id)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[counts]}"), console=console) as bar:
        task = bar.add_task(state["name"], total=max(state["audience_size"], 1), counts="")
        while True:
            counts = "  ".join(f"{k} {v}" for k, v in sorted(state["counts"].items()))
            bar.update(task, completed=state["messages_finished"], counts=counts)
            if state["status"] in ("completed", "canceled"):
                break
            time.sleep(0.5)
            state = _campaign_progress(ctx, sandbox, campaign_id)
    console.print(f"campaign {state['status']}")


@campaign_app.command("cancel")
def campaign_cancel(campaign_id: str, sandbox: SandboxOption = "prod") -> None:
    """Cancel a campaign: messages not yet sent are canceled."""
    from textrelay.services import campaigns, sandboxes

    with _unit_of_work() as (_, session):
        canceled = campaigns.cancel(session, sandboxes.get_by_name(session, sandbox), campaign_id)
    console.print(f"campaign canceled; {canceled} queued message(s) canceled")


@campaign_app.command("status")
def campaign_status(
    campaign_id: str,
    wait: Annotated[bool, typer.Option(help="Follow it with a progress bar until it completes.")] = False,
    sandbox: SandboxOption = "prod",
) -> None:
    """A campaign's progress: audience, messages created, counts per status."""
    ctx = _context()
    try:
        state = _campaign_progress(ctx, sandbox, campaign_id)
    except Exception as exc:
        _fail(exc)
    if wait:
        _wait_for_campaign(ctx, sandbox, campaign_id)
        return
    table = Table("field", "value")
    for key in ("id", "name", "status", "audience_size", "audience_rejected", "messages_created",
                "messages_finished", "started_at", "finished_at"):
        table.add_row(key, str(state[key]))
    for status, n in sorted(state["counts"].items()):
        table.add_row(f"  {status}", str(n))
    console.print(table)


@campaign_app.command("report")
def campaign_report(campaign_id: str, sandbox: SandboxOption = "prod") -> None:
    """Counts per status, errors by code, exclusions by reason, and the per-minute timeline."""
    from textrelay.services import campaigns, sandboxes

    with _unit_of_work() as (_, session):
        result = campaigns.report(session, campaigns.get(session, sandboxes.get_by_name(session, sandbox),
                                                         campaign_id))
    console.print(f"[bold]{result['name']}[/bold] ({result['status']}): audience {result['audience_size']}, "
                  f"{result['messages_created']} message(s)")
    counts = Table("status", "messages")
    for status, n in sorted(result["counts"].items()):
        counts.add_row(status, str(n))
    console.print(counts)
    if result["errors"]:
        errors = Table("error code", "message", "messages")
        for e in result["errors"]:
            errors.add_row(str(e["code"] or ""), e["message"] or "", str(e["count"]))
        console.print(errors)
    if result["exclusions"]:
        exclusions = Table("excluded because", "messages")
        for e in result["exclusions"]:
            exclusions.add_row(e["reason"] or "", str(e["count"]))
        console.print(exclusions)
    if result["timeline"]:
        timeline = Table("minute", "delivered", "failed")
        for point in result["timeline"]:
            timeline.add_row(point["minute"], str(point["delivered"]), str(point["failed"]))
        console.print(timeline)


@campaign_app.command("list")
def campaign_list(sandbox: SandboxOption = "prod") -> None:
    from textrelay.services import campaigns, sandboxes

    with _unit_of_work() as (_, session):
        box = sandboxes.get_by_name(session, sandbox)
        rows = list(session.scalars(campaigns.list_query(box).order_by(campaigns.Campaign.created_at.desc())))
        table = Table("id", "name", "status", "audience", "messages", "created")
        for c in rows:
            table.add_row(c.id, c.name, c.status, str(c.audience_size), str(c.messages_created),
                          c.created_at.isoformat(timespec="seconds"))
    console.print(table)


def main() -> None:  # pragma: no cover
    app()


