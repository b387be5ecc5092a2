"""Computing a batch (reads only): what a scoring process does.

A scoring process reads a batch's households, has the vault decrypt, score (numpy) and
encrypt them (:meth:`vault.Vault.score_compute`) and serialises and hashes one audit entry per
household (model version, model digest, keyed inputs digest, the job id). What it computed
goes to the writer through a pipe: :class:`Computed` pickles cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from audit.storage import StoredEntry
from gateway.db import make_engine
from gateway.keys import build_key_provider, load_or_create_ed25519
from gateway.rescore.planner import PlannedBatch, RescoreError, load_models
from gateway.score_audit import prepared_score_entries
from gateway.settings import Settings
from identity import Register
from rsu import HouseholdRegister
from rsu.tables import households
from storekit.bulk import among
from vault import DecisionVerifier, ScoredBatch, Vault

__all__ = ["Computed", "Scorer", "Stores", "check_dissolved"]


@dataclass
class Computed:
    """What a scoring process hands the writer for one batch."""

    batch_no: int
    households: list[tuple[str, str]]  # (household id, vault subject), as the batch read them
    scored: ScoredBatch  # sealed, opaque here
    entries: list[StoredEntry]  # each event's audit entry, prepared, in the events' order

    def __getstate__(self) -> tuple[Any, ...]:
        # The entries as plain tuples: pickle handles those in C, named tuples by a call each.
        return self.batch_no, self.households, self.scored, [tuple(e) for e in self.entries]

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.batch_no, self.households, self.scored, entries = state
        self.entries = [StoredEntry._make(e) for e in entries]


class Stores:
    """One process's engines (one per distinct URL), key provider, vault and household
    register (which notes the model version of each household scored)."""

    def __init__(self, settings: Settings, version: str, models_dir: Path | None) -> None:
        self.settings = settings
        urls = settings.database_urls
        self.engines: dict[str, Engine] = {}
        for store, url in urls.items():
            self.engines[store] = next(
                (e for s, e in self.engines.items() if urls[s] == url), None
            ) or make_engine(url)
        self.one_database = len(set(urls.values())) == 1
        self.provider = build_key_provider(settings)
        signing = load_or_create_ed25519(settings.data_dir / "keys" / "decision-signing.pem")
        self.vault = Vault(
            self.engines["vault"], self.provider, DecisionVerifier(signing.public_key())
        )
        self.main = self.engines["main"]
        self.models = load_models(settings, version, models_dir)
        # No score listener: the rescoring writes its own audit entries, prepared by the
        # scoring processes, once per household and job.
        self.households = HouseholdRegister(
            self.main, self.vault, Register(self.main, self.vault), models=self.models
        )

    def close(self) -> None:
        self.provider.close()
        for engine in {id(e): e for e in self.engines.values()}.values():
            engine.dispose()


class Scorer:
    """Computes batches (reads only): the scoring processes' part."""

    def __init__(self, stores: Stores, job_id: str) -> None:
        self.stores = stores
        self.job_id = job_id

    def compute(self, batch: PlannedBatch) -> Computed:
        s = self.stores
        with s.main.connect() as conn:
            pairs = [
                (str(household_id), str(subject))
                for household_id, subject in conn.execute(
                    select(households.c.household_id, households.c.vault_subject)
                    .where(batch.members())
                    .order_by(households.c.created_at, households.c.household_id)
                )
            ]
        # A household dissolved since the batch was read is gone from the vault: left out.
        scored = s.vault.score_compute([subject for _, subject in pairs], s.models, skip_gone=True)
        if scored.gone:
            with s.main.connect() as conn:
                check_dissolved(conn, scored.gone)
        entries = prepared_score_entries(s.vault, scored.events, "rescore", job=self.job_id)
        return Computed(batch.batch_no, pairs, scored, entries)


def check_dissolved(conn: Connection, subjects: Sequence[str]) -> None:
    """Refuse to leave out households whose vault record is erased or missing while they are
    still registered: a dissolution deletes the household before it erases its record, so
    that is no dissolution but a register out of step with its vault."""
    still = conn.execute(
        select(func.count()).where(among(conn, households.c.vault_subject, list(subjects)))
    ).scalar_one()
    if still:
        raise RescoreError(
            f"{still} registered households have no vault record (erased or missing); "
            "the rescoring cannot score them"
        )
