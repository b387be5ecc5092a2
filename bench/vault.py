"""Vault throughput: fields stored and revealed per second through ``store_many`` /
``reveal_many``, against a raw AES-256-GCM loop over the same values in the same run.

    .venv/bin/python bench/vault.py [--persons 4000] [--batch 1000] [--postgres URL]

PostgreSQL runs when ``--postgres`` or ``SIJILL_TEST_DATABASE_URL`` names a server (a scratch
schema is created and dropped). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import db
from vault import Decision, DecisionVerifier, FileKeyProvider, Vault
from vault.decision import signing_payload


def person(i: int) -> dict[str, object]:
    return {
        "given_name_ar": f"فاطمة{i}",
        "family_name_ar": f"العلوي{i}",
        "given_name_lat": f"Fatima{i}",
        "family_name_lat": f"Alaoui{i}",
        "sex": "F" if i % 2 else "M",
        "birth_date": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}",
        "birth_place": "Fès",
        "cnie": f"AB{i:06d}",
        "nationality": "MAR",
        "residency_status": "citizen",
        "address": f"{i} derb Sidi Ahmed, Médina",
        "region": "Fès-Meknès",
        "province": "Fès",
        "phone": f"06{i:08d}",
    }


def raw_aes_gcm(values: list[bytes]) -> tuple[float, float]:
    """Seconds to encrypt and to decrypt every value once under one key: the floor."""
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    t0 = time.perf_counter()
    sealed = []
    for v in values:
        nonce = os.urandom(12)
        sealed.append((nonce, aead.encrypt(nonce, v, b"ad")))
    t1 = time.perf_counter()
    for nonce, c in sealed:
        aead.decrypt(nonce, c, b"ad")
    return t1 - t0, time.perf_counter() - t1


def run(url: str, keys_dir: Path, persons: int, batch: int) -> dict[str, object]:
    db.upgrade({"main": url, "vault": url, "audit": url})
    engine = db.make_engine(url)
    signer = Ed25519PrivateKey.generate()
    vault = Vault(engine, FileKeyProvider(keys_dir), DecisionVerifier(signer.public_key()))
    records = [(f"p{i:08d}", "person", person(i)) for i in range(persons)]
    n_fields = sum(len(f) for _, _, f in records)
    values = [str(v).encode() for _, _, f in records for v in f.values()]
    raw_enc, raw_dec = raw_aes_gcm(values)

    t0 = time.perf_counter()
    for start in range(0, persons, batch):
        vault.store_many(records[start : start + batch])
    store_s = time.perf_counter() - t0

    now = time.time_ns()
    names = tuple(sorted(person(0)))
    requests = []
    for subject, _, _ in records:
        d = Decision(
            f"d-{subject}",
            subject,
            "read_attributes",
            "bench",
            names,
            names,
            {},
            {"type": "law", "ref": "72.18"},
            "rev",
            0,
            now,
            now + 600 * 10**9,
        )
        d = dataclasses.replace(d, signature=signer.sign(signing_payload(d)))
        requests.append((subject, names, d))
    # One Ed25519 verification per request is part of every reveal: measured alone too.
    verifier = DecisionVerifier(signer.public_key())
    t0 = time.perf_counter()
    for subject, _, d in requests:
        verifier.verify(d, subject)
    verify_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    revealed = 0
    for start in range(0, persons, batch):
        for out in vault.reveal_many(requests[start : start + batch]):
            revealed += len(out)
    reveal_s = time.perf_counter() - t0
    assert revealed == n_fields
    engine.dispose()
    return {
        "fields": n_fields,
        "stored_fields_per_s": round(n_fields / store_s),
        "revealed_fields_per_s": round(n_fields / reveal_s),
        "raw_aes_gcm_encrypt_per_s": round(n_fields / raw_enc),
        "raw_aes_gcm_decrypt_per_s": round(n_fields / raw_dec),
        "decision_checks_per_s": round(persons / verify_s),
        "store_ratio_vs_raw": round(raw_enc / store_s, 4),
        "reveal_ratio_vs_raw": round(raw_dec / reveal_s, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--postgres", default=os.environ.get("SIJILL_TEST_DATABASE_URL"))
    args = parser.parse_args()
    result: dict[str, object] = {"benchmark": "vault", "persons": args.persons, "batch": args.batch}
    with tempfile.TemporaryDirectory() as tmp:
        result["sqlite"] = run(
            f"sqlite:///{tmp}/vault.db", Path(tmp) / "keys", args.persons, args.batch
        )
        if args.postgres:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            sep = "&" if "?" in args.postgres else "?"
            url = f"{args.postgres}{sep}options={quote(f'-csearch_path={schema}')}"
            try:
                result["postgresql"] = run(url, Path(tmp) / "pgkeys", args.persons, args.batch)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
