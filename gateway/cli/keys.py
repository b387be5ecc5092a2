"""``sijill keys``: the key-encryption key's versions, and online rotation."""

from __future__ import annotations

import typer

from gateway.cli import CliError, friendly, out, progress_bar, settings_from
from gateway.deploy import open_vault
from vault import rotate as rotate_keys

NAME = "keys"
app = typer.Typer(help="Key-encryption keys: status and rotation.", no_args_is_help=True)


@app.command("status")
@friendly
def status(data_dir: str | None = typer.Option(None, help="Data directory")) -> None:
    """Show the KEK versions and how many data keys each one wraps."""
    settings = settings_from(data_dir)
    with open_vault(settings) as vault:
        info = vault.status()
    out.print(f"key provider:     {info['provider']}")
    out.print(f"current version:  {info['current_version']}")
    out.print(f"versions:         {', '.join(str(v) for v in info['versions'])}")
    for version, count in sorted(info["data_keys_by_kek_version"].items()):
        out.print(f"  v{version}: {count} data keys")
    out.print(f"subjects:         {info['subjects']} ({info['erased']} erased)")
    pending = info["rotation_in_progress"]
    if pending:
        out.print(
            f"rotation to v{pending['target_version']} unfinished: "
            f"{pending['rewrapped']} re-wrapped; run `sijill keys rotate` to resume"
        )


@app.command("rotate")
@friendly
def rotate(
    data_dir: str | None = typer.Option(None, help="Data directory"),
    batch_size: int = typer.Option(1000, min=1, max=100_000, help="Data keys per transaction"),
    retire: bool = typer.Option(True, help="Retire old KEK versions once nothing uses them"),
) -> None:
    """Add a KEK version and re-wrap every data key under it, online and resumable."""
    settings = settings_from(data_dir)
    with open_vault(settings) as vault, progress_bar("re-wrapping data keys") as bar:
        task = bar.add_task("rotate", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = rotate_keys(vault, batch_size=batch_size, progress=progress, retire=retire)
    verb = "resumed and finished" if report.resumed else "finished"
    out.print(f"rotation to KEK v{report.target_version} {verb}: {report.rewrapped} re-wrapped")
    if report.retired:
        out.print(f"retired KEK versions: {', '.join(str(v) for v in report.retired)}")
    if not report.finished and not report.failed:
        raise CliError(
            "rotation is not finished: data keys kept appearing under an old KEK version; "
            "run `sijill keys rotate` again to resume"
        )
    if report.failed:
        raise CliError(
            f"{report.failed} wrapped keys failed authentication and were left as they are; "
            "old KEK versions were kept. Investigate before retrying."
        )
