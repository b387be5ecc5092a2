"""Files as offices export them: UTF-8 with Excel's BOM and French Excel's semicolons,
Windows-1256 (Arabic Windows), Latin-1 — read as they were written, never a traceback."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from gateway.cli import app as root_app
from identity.bulk import detect_encoding, read_records
from identity.synth import CSV_COLUMNS, generate
from tests.gateway.test_rnp_import import _rows, cli  # noqa: F401 - the CLI fixture

PEOPLE = 15


def _csv_text(records: list[dict[str, Any]], delimiter: str, columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=delimiter, lineterminator="\r\n",
                            extrasaction="ignore")  # fmt: skip
    writer.writeheader()
    for r in records:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return out.getvalue()


def _read_back(path: Path) -> list[dict[str, Any]]:
    return [record for _line, record, _problems in read_records(path) if record is not None]


def test_an_excel_utf8_file_with_bom_and_semicolons_enrols_everyone(
    cli: CliRunner,  # noqa: F811 - the fixture imported above
    settings: Any,
    tmp_path: Path,
) -> None:
    records = list(generate(PEOPLE, seed=31))
    path = tmp_path / "bureau-fes.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _csv_text(records, ";", CSV_COLUMNS).encode("utf-8"))
    assert detect_encoding(path) == "utf-8-sig"
    result = cli.invoke(root_app, ["rnp", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{PEOPLE} enrolled, 0 rejected" in result.output
    assert _rows(settings, "rnp_persons") == PEOPLE


def test_a_windows_1256_file_enrols_everyone_with_the_arabic_names_intact(
    cli: CliRunner,  # noqa: F811 - the fixture imported above
    settings: Any,
    tmp_path: Path,
) -> None:
    records = list(generate(PEOPLE, seed=32))
    path = tmp_path / "bureau-oujda.csv"
    path.write_bytes(_csv_text(records, ",", CSV_COLUMNS).encode("cp1256"))
    assert detect_encoding(path) == "cp1256"
    read = _read_back(path)
    assert [r["given_name_ar"] for r in read] == [r["given_name_ar"] for r in records]
    result = cli.invoke(root_app, ["rnp", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{PEOPLE} enrolled, 0 rejected" in result.output


def test_a_latin1_file_is_read_with_its_accents(tmp_path: Path) -> None:
    records = [
        {**r, "given_name_ar": None, "family_name_ar": None,
         "birth_place": "Fès", "address": "3 Rue Aït Baha, Salé"}
        for r in generate(5, seed=33)
    ]  # fmt: skip
    path = tmp_path / "bureau-sale.csv"
    path.write_bytes(_csv_text(records, ";", CSV_COLUMNS).encode("latin-1"))
    assert detect_encoding(path) in {"latin_1", "cp1252"}  # the same letters here
    read = _read_back(path)
    assert [r["birth_place"] for r in read] == ["Fès"] * 5
    assert [r["address"] for r in read] == ["3 Rue Aït Baha, Salé"] * 5


def test_a_file_that_is_not_text_is_one_clear_error(
    cli: CliRunner,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    path = tmp_path / "scan.csv"
    path.write_bytes(bytes(range(256)) * 64)
    result = cli.invoke(root_app, ["rnp", "import", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "scan.csv:" in result.output


def test_progress_off_a_terminal_is_plain_lines_with_the_rate(
    settings: Any, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    settings.prepare_data_dir()
    records = list(generate(40, seed=34))
    path = tmp_path / "people.csv"
    path.write_text(_csv_text(records, ",", CSV_COLUMNS), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
    env.update(SIJILL_DATA_DIR=str(settings.data_dir), SIJILL_DATABASE_URL=settings.database_url)
    sijill = str(Path(sys.executable).with_name("sijill"))
    done = subprocess.run(
        [sijill, "rnp", "import", str(path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("enrolling:")]
    assert lines, done.stderr
    assert lines[-1].startswith("enrolling: 41/41, ")  # the header is line 1
    assert "/s, enrolled 40, rejected 0" in lines[-1]
    assert "\x1b[" not in done.stderr  # no terminal escapes in a log
