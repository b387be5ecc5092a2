"""``sijill citizens``: a citizen's access to the portal."""

from __future__ import annotations

import typer

from gateway.cli import CliError, friendly, out, print_json, settings_from

NAME = "citizens"
app = typer.Typer(help="Citizens' access to the portal: activation codes.", no_args_is_help=True)


@app.command("activation-code")
@friendly
def activation_code(
    idcs: str = typer.Argument(..., help="The person's IDCS (10 digits)"),
    data_dir: str | None = typer.Option(None, help="Data directory"),
    json_out: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Issue a one-time activation code for the portal (a lost phone: the old sign-in stops);
    queued to the citizen and on the audit record, like an office's."""
    from gateway.services import build_services
    from gateway.web.activation import issue_activation_code
    from identity import PersonErased, UnknownPerson

    settings = settings_from(data_dir)
    assert settings.issuer is not None
    services = build_services(settings)
    try:
        try:
            issued = issue_activation_code(
                services, idcs, {"kind": "system", "id": "sijill-cli", "sector": None}
            )
        except (UnknownPerson, PersonErased):
            raise CliError(f"no enrolled person has the IDCS {idcs}") from None
        except ValueError as exc:
            raise CliError(str(exc)) from None
    finally:
        services.close()
    if json_out:
        print_json({"idcs": idcs, "activation_code": issued.code, "expires_at": issued.expires_at})
    else:
        out.print(f"activation code for {idcs}: {issued.code}")
        out.print(f"the citizen opens {settings.issuer}/portal/activate")
