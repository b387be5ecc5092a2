"""``sijill witness``: run an audit-log witness (C2SP tlog-witness) for others' logs."""

from __future__ import annotations

from pathlib import Path

import typer
import uvicorn

from audit import Cosigner, InvalidCheckpoint, NoteVerifier, Witness
from gateway.cli import CliError, friendly, out
from gateway.db import make_engine
from gateway.keys import load_or_create_ed25519
from gateway.witnessing import witness_app

NAME = "witness"
app = typer.Typer(help="An independent witness of audit logs.", no_args_is_help=True)

WitnessDir = typer.Option(Path("witness"), help="The witness's own directory (key and store)")
Name = typer.Option("witness.local", help="The witness's key name (one word, no '+')")


def _cosigner(directory: Path, name: str) -> Cosigner:
    key = load_or_create_ed25519(directory / "witness-signing.pem")
    try:
        return Cosigner(name, key)
    except InvalidCheckpoint as exc:
        raise CliError(f"--name: {exc}") from None


@app.command("key")
@friendly
def key(directory: Path = WitnessDir, name: str = Name) -> None:
    """Print the witness's public key (created on first use), to give to the logs it follows."""
    typer.echo(str(_cosigner(directory, name).verifier))


@app.command("serve")
@friendly
def serve(
    log: list[str] = typer.Option(..., help="The verifier key of a log to follow (repeatable)"),
    directory: Path = WitnessDir,
    name: str = Name,
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8090, min=1, max=65535, help="Port"),
) -> None:
    """Serve C2SP tlog-witness: cosign each log's checkpoints that extend the last one it saw.

    The witness keeps its own key and store in DIRECTORY; it refuses rolled-back or forked
    checkpoints, and remembers across restarts."""

    logs = {}
    for text in log:
        try:
            verifier = NoteVerifier.parse(text)
        except InvalidCheckpoint as exc:
            raise CliError(f"--log: {exc}") from None
        logs[verifier.name] = verifier  # a Sijill log's key is named after its origin
    cosigner = _cosigner(directory, name)
    engine = make_engine(f"sqlite:///{(directory / 'witness.db').absolute()}")
    witness = Witness(engine, cosigner, logs)
    out.print(f"witness {cosigner.verifier} following {', '.join(logs)}", highlight=False)
    uvicorn.run(witness_app(witness), host=host, port=port, log_level="warning")
