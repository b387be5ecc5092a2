"""The vault's rooms keep to their lines: the scoring's model and features are pure computation,
no service calls back into the ``Vault`` facade, no module imports another's private names, the
AEAD and KDF primitives come from ``vault.envelope``, and SQL driver calls stay in storekit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

VAULT = Path(__file__).resolve().parents[2] / "vault"
# Everything that encrypts, wraps or derives goes through vault.envelope.
HAZMAT_ALLOWED = {"envelope.py"}


def _modules() -> list[Path]:
    return sorted(VAULT.rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import statement in ``path``."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def _name(path: Path) -> str:
    return str(path.relative_to(VAULT.parent))


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_no_vault_module_imports_another_modules_private_names(path: Path) -> None:
    for module, names in _imports(path):
        if module.startswith("vault"):
            assert not [n for n in names if n.startswith("_")], (_name(path), module)


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_cryptography_primitives_are_imported_by_the_envelope_alone(path: Path) -> None:
    if path.name in HAZMAT_ALLOWED and path.parent == VAULT:
        return
    for module, _names in _imports(path):
        assert not module.startswith("cryptography.hazmat"), _name(path)


@pytest.mark.parametrize("path", sorted((VAULT / "scoring").glob("*.py")), ids=_name)
def test_the_scoring_never_calls_back_into_the_vault_facade(path: Path) -> None:
    for module, _names in _imports(path):
        assert module != "vault.core", _name(path)


@pytest.mark.parametrize("name", ["features.py", "model.py"])
def test_scoring_features_and_models_touch_no_store_and_no_key(name: str) -> None:
    path = VAULT / "scoring" / name
    for module, _names in _imports(path):
        assert not module.startswith(("sqlalchemy", "storekit", "cryptography")), module
        assert module not in ("vault.records", "vault.derive", "vault.envelope", "vault.tables")


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_no_vault_module_hands_sql_to_the_driver_itself(path: Path) -> None:
    text = path.read_text()
    for driver_call in (
        "exec_driver_sql",
        "dbapi_connection",
        "raw_connection",
        "driver_connection",
    ):
        assert driver_call not in text, _name(path)
