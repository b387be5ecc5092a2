"""``sijill pdp``: the OPA-compatible policy decision server, and policy tooling."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
import uvicorn

from gateway.cli import CliError, friendly, out
from policies import POLICY_DIR, EmbeddedEngine, PolicyError, PolicyUnavailable
from policies.pdp import create_pdp_app
from policies.rego_tests import run_rego_tests
from policies.safety import check_files

NAME = "pdp"
app = typer.Typer(
    help="Policy decision point (OPA Data API) and policy tools.", no_args_is_help=True
)

PolicyDir = typer.Option(None, help="Directory of the Rego modules (default: the bundled ones)")
DataDirOpt = typer.Option(None, help="Directory of the policy data files (default: <policy>/data)")


def _engine(policy_dir: str | None, data_dir: str | None) -> EmbeddedEngine:
    try:
        return EmbeddedEngine(
            Path(policy_dir) if policy_dir else POLICY_DIR,
            data_dir=Path(data_dir) if data_dir else None,
        )
    except (PolicyError, OSError) as exc:
        raise CliError(str(exc)) from None


@app.command()
@friendly
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8181, min=1, max=65535, help="Port (OPA's default is 8181)"),
    policy_dir: str | None = PolicyDir,
    data_dir: str | None = DataDirOpt,
    reload_every: float = typer.Option(
        2.0, min=0, help="Seconds between checks for changed policy files (0: never)"
    ),
) -> None:
    """Serve POST /v1/data/{path} from the embedded engine, as OPA would."""

    engine = _engine(policy_dir, data_dir)
    out.print(f"pdp: policy revision {engine.revision} on http://{host}:{port}", highlight=False)
    app_ = create_pdp_app(engine, reload_every_s=reload_every or None)
    uvicorn.run(app_, host=host, port=port, log_config=None, access_log=False, server_header=False)


@app.command()
@friendly
def revision(policy_dir: str | None = PolicyDir, data_dir: str | None = DataDirOpt) -> None:
    """Print the policy revision (SHA-256 of the policy and data files)."""
    out.print(_engine(policy_dir, data_dir).revision, highlight=False)


@app.command("eval")
@friendly
def eval_(
    input_file: str = typer.Argument("-", help="Input document (JSON file, or - for stdin)"),
    policy_dir: str | None = PolicyDir,
    data_dir: str | None = DataDirOpt,
) -> None:
    """Evaluate one input document and print the decision."""

    text = sys.stdin.read() if input_file == "-" else Path(input_file).read_text()
    try:
        doc = json.loads(text)
    except ValueError:
        raise CliError("the input is not valid JSON") from None
    try:
        result = _engine(policy_dir, data_dir).evaluate(doc)
    except PolicyUnavailable as exc:
        raise CliError(str(exc)) from None
    out.print_json(json.dumps(result))


@app.command("test")
@friendly
def test(policy_dir: str | None = PolicyDir) -> None:
    """Check every Rego file for unsafe variables (OPA's safety rule), then run the Rego
    ``test_*`` rules of ``*_test.rego`` and report each."""

    directory = Path(policy_dir) if policy_dir else POLICY_DIR
    try:
        unsafe = check_files(directory.glob("*.rego"))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    for problem in unsafe:
        out.print(f"UNSAFE {problem}", highlight=False)
    if unsafe:
        out.print(f"{len(unsafe)} unsafe variables: OPA would refuse these modules")
        raise typer.Exit(1)
    results = run_rego_tests(directory)
    failed = [name for name, ok in results.items() if not ok]
    for name, ok in results.items():
        out.print(f"{'PASS' if ok else 'FAIL'} {name}", highlight=False)
    out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed", highlight=False)
    if failed:
        raise typer.Exit(1)
