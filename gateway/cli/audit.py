"""``sijill audit``: export the log, verify it offline, issue a checkpoint on demand."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.progress import Progress
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from audit import (
    AuditLog,
    AuditUnavailable,
    CosignatureVerifier,
    Cosigner,
    Export,
    FileMemory,
    InvalidCheckpoint,
    SqlMemory,
    SqlStorage,
    TrustedHead,
    VerificationFailed,
    export_lines,
    open_checkpoint,
    remembered_heads,
    verify_receipt,
)
from audit import verify as verify_export
from audit.witness import latest_cosigned
from gateway.cli import CliError, err, friendly, out, progress_bar, settings_from
from gateway.db import make_engine
from gateway.keys import build_audit_log
from gateway.settings import Settings, load_settings
from gateway.witnesses import EMBEDDED_WITNESS, WitnessEndpoint

NAME = "audit"
app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)

DataDir = typer.Option(None, help="Data directory")
DatabaseUrl = typer.Option(None, help="The audit database (default: the data directory's)")


@contextmanager
def _log(data_dir: str | None) -> Iterator[AuditLog]:
    """The log as the gateway opens it: the writer side (it signs)."""

    settings = settings_from(data_dir)
    engine = make_engine(settings.database_urls["audit"])
    main = make_engine(settings.database_urls["main"])
    try:
        log = build_audit_log(settings, engine, main)
        yield log
        log.close()
    except SQLAlchemyError as exc:
        raise CliError(f"the audit database is unreachable: {type(exc).__name__}") from None
    finally:
        engine.dispose()
        main.dispose()


@dataclass
class _Store:
    """A log opened for reading only: nothing is created, no key is needed."""

    settings: Settings
    storage: SqlStorage
    origin: str
    verifier_key: str


@contextmanager
def _read_only(data_dir: str | None, database_url: str | None) -> Iterator[_Store]:
    if data_dir is not None:
        os.environ["SIJILL_DATA_DIR"] = data_dir
    settings = load_settings()
    url = database_url or settings.database_urls["audit"]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise CliError(
            f"no audit database at {parsed.database}: name the data directory (--data-dir) "
            "or the database (--database-url)"
        )
    engine = make_engine(url, pool_size=2)
    try:
        storage = SqlStorage(engine)
        try:
            recorded = storage.meta()
        except AuditUnavailable as exc:
            raise CliError(
                f"cannot read the audit log at {parsed.render_as_string(hide_password=True)}: "
                f"{type(exc).__name__} (is the database up and migrated?)"
            ) from None
        origin = recorded.get("origin")
        key = recorded.get("verifier_key")
        if not origin or not key:
            raise CliError(
                "the audit store records no origin or verifier key: start the gateway once"
            )
        yield _Store(settings, storage, origin, key)
    finally:
        engine.dispose()


def _signer_memory(store: _Store) -> list[TrustedHead]:
    """What the signer remembers (its file in the data directory, its row in the main
    database), for the verifier to hold the store to."""

    heads: list[TrustedHead] = []
    path = store.settings.data_dir / "audit" / "signer-state.json"
    try:
        state = FileMemory.read_only(path)
    except ValueError:
        raise CliError(f"{path} is not readable JSON") from None
    if state is not None and state.get("origin") == store.origin:
        heads.extend(remembered_heads(FileMemory(path, store.origin)))
    main = store.settings.database_urls["main"]
    engine = make_engine(main, pool_size=1)
    try:
        row = SqlMemory(engine, store.origin).signed()
    except AuditUnavailable:
        row = None  # no main database here, or not migrated: the file and witnesses remain
    finally:
        engine.dispose()
    if row is not None:
        heads.append(
            TrustedHead(
                f"the checkpoint the signer last signed (size {row.size})", row.size, row.root
            )
        )
    return heads


def _witness_heads(
    store: _Store, keys: list[CosignatureVerifier], urls: dict[str, str]
) -> list[TrustedHead]:
    """The newest checkpoint each witness cosigned, asked of the witness itself."""

    heads = []
    for key in keys:
        url = urls.get(key.name)
        if url is None:
            continue
        try:
            reply = httpx.get(f"{url}/latest", params={"origin": store.origin}, timeout=5)
        except httpx.HTTPError as exc:
            err.print(f"note: witness {key.name} unreachable ({type(exc).__name__}); not asked")
            continue
        if reply.status_code == 404:
            continue
        try:
            if reply.status_code != 200 or key.verify(reply.text) is None:
                raise InvalidCheckpoint("no valid cosignature")
            cp = open_checkpoint(reply.text, store.verifier_key, store.origin)
        except InvalidCheckpoint as exc:
            raise CliError(
                f"witness {key.name} answered with an unusable checkpoint: {exc}"
            ) from None
        heads.append(
            TrustedHead(
                f"the checkpoint witness {key.name} cosigned (size {cp.tree_size})",
                cp.tree_size,
                cp.root_hash,
            )
        )
    return heads


def _progress() -> Progress:
    return progress_bar("{task.description}", transient=True)


@app.command("export")
@friendly
def export(
    file: Path = typer.Argument(..., help="Where to write the JSON Lines export"),
    data_dir: str | None = DataDir,
    database_url: str | None = DatabaseUrl,
) -> None:
    """Write the whole log (entries, tree nodes, checkpoints) as JSON Lines, for offline
    verification by anyone (``sijill audit verify --export FILE``)."""
    with _read_only(data_dir, database_url) as store:
        try:
            size = store.storage.head()[0]
            tmp = file.with_name(file.name + ".partial")
            with _progress() as bar, tmp.open("w", encoding="utf-8") as fh:
                task = bar.add_task("exporting entries", total=size)
                lines = export_lines(store.storage, store.origin, store.verifier_key)
                for number, line in enumerate(lines):
                    fh.write(line + "\n")
                    if 0 < number <= size and number % 1000 == 0:
                        bar.update(task, completed=number)
                fh.flush()
                os.fsync(fh.fileno())
            # Written aside, then renamed: an interrupted export never leaves a truncated file
            # that would read as a shortened log; rerunning starts it over.
            tmp.replace(file)
        except AuditUnavailable as exc:
            raise CliError(str(exc)) from None
    out.print(f"exported {size} entries to {file}")


@app.command("verify")
@friendly
def verify(
    export: Path | None = typer.Option(
        None, "--export", help="An export file (default: the live audit database)"
    ),
    trusted_checkpoint: Path | None = typer.Option(
        None, help="A checkpoint note obtained earlier; the log must still contain it"
    ),
    verifier_key: str | None = typer.Option(
        None, help="The log's verifier key (default: the one the store or export records)"
    ),
    witness: list[str] = typer.Option(
        [],
        help="A witness's key whose cosignatures must verify (repeatable; default: the "
        "configured witnesses)",
    ),
    data_dir: str | None = DataDir,
    database_url: str | None = DatabaseUrl,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Recompute the tree; check every checkpoint's signature and cosignatures, the tree against
    every checkpoint, the signer's memory and the witnesses; name the first bad index and its
    cause (exit status 1). Reads only: it creates no file and no key."""

    keys = [_witness_key(k) for k in witness]
    heads: list[TrustedHead] = []
    try:
        if export is not None:
            if not export.is_file():
                raise CliError(f"no export file at {export}")
            parsed = Export.read(export)
        else:
            with _read_only(data_dir, database_url) as store:
                configured = WitnessEndpoint.parse_list(store.settings.audit_witnesses)
                urls = {w.key.name: w.url for w in configured}
                keys = keys or [w.key for w in configured] + _embedded_witness_key(store)
                heads = _signer_memory(store) + _witness_heads(store, keys, urls)
                heads += _embedded_witness_head(store)
                try:
                    parsed = Export.from_lines(
                        export_lines(store.storage, store.origin, store.verifier_key)
                    )
                except AuditUnavailable as exc:
                    raise CliError(str(exc)) from None
    except VerificationFailed as exc:
        raise CliError(f"unreadable export: {exc}") from None
    trusted = None
    if trusted_checkpoint is not None:
        try:
            trusted = trusted_checkpoint.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read {trusted_checkpoint}: {exc.strerror}") from None
    with _progress() as bar:
        task = bar.add_task("hashing entries", total=len(parsed.rows))
        report = verify_export(
            parsed,
            trusted,
            verifier_key=verifier_key,
            witnesses=keys,
            trusted_heads=heads,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    if as_json:
        out.print_json(json.dumps(report.to_json()))
    elif report.ok:
        out.print(
            f"[green]OK[/]: {report.tree_size} entries, root {report.root_hash.hex()}, "
            f"{report.checkpoints_verified} checkpoint(s) verified and consistent"
            + (f"; {len(heads)} head(s) known outside the store hold" if heads else "")
            + (f" ({report.problem})" if report.problem else ""),
            highlight=False,
            soft_wrap=True,
        )
    else:
        where = (
            f" first bad index: {report.first_bad_index};"
            if (report.first_bad_index is not None)
            else ""
        )
        out.print(f"[bold red]FAILED[/]:{where} {report.problem}", highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def _witness_key(text: str) -> CosignatureVerifier:
    try:
        return CosignatureVerifier.parse(text)
    except InvalidCheckpoint as exc:
        raise CliError(f"--witness: {exc}") from None


def _embedded_store(store: _Store) -> Path | None:
    path = store.settings.data_dir / "witness" / "witness.db"
    return path if path.is_file() else None


def _embedded_witness_key(store: _Store) -> list[CosignatureVerifier]:
    """The demo witness's key, read from its key file (never created here)."""

    path = store.settings.data_dir / "witness" / "witness-signing.pem"
    if not path.is_file():
        return []
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return [Cosigner(EMBEDDED_WITNESS, key).verifier]


def _embedded_witness_head(store: _Store) -> list[TrustedHead]:
    """The demo witness's newest cosigned checkpoint, read from its own store."""

    path = _embedded_store(store)
    if path is None:
        return []
    engine = create_engine(f"sqlite:///{path}")
    try:
        note = latest_cosigned(engine, store.origin)
    finally:
        engine.dispose()
    if note is None:
        return []
    cp = open_checkpoint(note, store.verifier_key, store.origin)
    label = f"the checkpoint witness {EMBEDDED_WITNESS} cosigned (size {cp.tree_size})"
    return [TrustedHead(label, cp.tree_size, cp.root_hash)]


@app.command("verify-receipt")
@friendly
def verify_receipt_command(
    file: Path = typer.Argument(..., help="A receipt (JSON) from the access log"),
    verifier_key: str | None = typer.Option(
        None, help="The log's verifier key, as published (default: the receipt's own)"
    ),
    witness: list[str] = typer.Option([], help="A witness's published key (repeatable)"),
    min_witnesses: int = typer.Option(
        0, min=0, help="How many of those witnesses must have cosigned the checkpoint"
    ),
) -> None:
    """Check a citizen's receipt offline: the entry is in the log under a signed checkpoint,
    cosigned by at least --min-witnesses of the given witnesses."""

    try:
        receipt = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror}") from None
    except ValueError:
        raise CliError(f"{file} is not JSON") from None
    if not isinstance(receipt, dict):
        raise CliError(f"{file} is not a receipt")
    keys = [_witness_key(k) for k in witness]
    if min_witnesses > len(keys):
        raise CliError("--min-witnesses is larger than the number of --witness keys given")
    try:
        entry = verify_receipt(receipt, verifier_key, witnesses=keys, min_witnesses=min_witnesses)
    except VerificationFailed as exc:
        out.print(f"[bold red]FAILED[/]: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out.print(
        f"[green]OK[/]: entry {receipt.get('leaf_index')} ({entry.action}, {entry.outcome}) is "
        f"in the log of size {receipt.get('tree_size')}"
        + (f", cosigned by {min_witnesses}+ witness(es)" if min_witnesses else ""),
        highlight=False,
        soft_wrap=True,
    )


@app.command("checkpoint")
@friendly
def checkpoint(data_dir: str | None = DataDir) -> None:
    """Sign and store a checkpoint of the current tree now; print the note."""
    with _log(data_dir) as log:
        try:
            cp = log.issue_checkpoint()
        except AuditUnavailable as exc:
            raise CliError(str(exc)) from None
    # Raw, never re-wrapped: the note is signed text, byte for byte.
    typer.echo(cp.note, nl=False)
