"""``sijill vault``: checks of the vault store that need no key."""

from __future__ import annotations

import typer

from gateway.cli import CliError, friendly, out, settings_from
from gateway.deploy import unreachable

NAME = "vault"
app = typer.Typer(help="The vault store: checks after an upgrade.", no_args_is_help=True)


@app.command("check")
@friendly
def check(data_dir: str | None = typer.Option(None, help="Data directory")) -> None:
    """Report whether the vault store holds anything in a form the vault does not read
    (exit status 1 if it does). Decrypts nothing and names no subject."""
    from sqlalchemy.exc import OperationalError

    from gateway.db import make_engine
    from vault.check import check_store

    settings = settings_from(data_dir)
    url = settings.vault_database_url
    assert url
    engine = make_engine(url)
    try:
        report = check_store(engine)
    except OperationalError as exc:
        raise CliError(unreachable("vault", url, exc)) from None
    finally:
        engine.dispose()
    out.print(f"scores in the three-field form: {report.legacy_scores}")
    if not report.clean:
        out.print(
            "the vault migrations are not all applied (sijill db upgrade removes these "
            "scores; a rescoring computes them again)"
        )
        raise typer.Exit(1)
    out.print("nothing in a legacy form")
