"""The embedded demo: a data dir a newcomer can use at once.

Writes ``<data dir>/demo/credentials.json`` in one fixed shape; each area adds its part
through :data:`STEPS` (keys, a synthetic population, agencies, the auditor …).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.db import make_engine
from gateway.deploy import DeploymentError, client_keypair, open_oauth, open_register
from gateway.keys import build_audit_log
from gateway.services import build_services
from gateway.settings import Settings
from identity import PersonIn
from identity.synth import generate
from rsu import HouseholdError
from rsu.synthetic import group_households, household_request

Credentials = dict[str, Any]
# Each step receives the settings, the credentials being built and a console for progress.
STEPS: list[Callable[[Settings, Credentials, Console], None]] = []


def enrol_demo_population(settings: Settings, credentials: Credentials, console: Console) -> None:
    """RNP: enrol 50 synthetic persons (seed 2026); three adults become demo citizens."""
    records = list(generate(50, 12, seed=2026))
    people = [
        PersonIn.model_validate({k: v for k, v in r.items() if k not in ("household", "role")})
        for r in records
    ]
    with open_register(settings) as (register, _engine, _vault):
        issued = register.enrol_many(people)
    console.print(f"enrolled {sum(i is not None for i in issued)} synthetic persons in the RNP")
    # Handed to register_demo_households (RSU), which removes it before the file is written.
    credentials["_rnp_population"] = list(zip(records, issued, strict=True))
    for person, idcs in zip(people, issued, strict=True):
        if idcs is not None and person.cnie and len(credentials["citizens"]) < 3:
            # The OAuth step fills in each citizen's TOTP secret.
            credentials["citizens"].append(
                {
                    "idcs": idcs,
                    "cnie": person.cnie,
                    "totp_secret": None,
                    "name": f"{person.given_name_lat} {person.family_name_lat}",
                }
            )


STEPS.append(enrol_demo_population)


# The client ids are the agency codes of policies/data/registry.json: the policy decision
# matches a caller's client_id against the agencies each processing declaration names.
DEMO_AGENCIES = (
    # (client_id, name, sector, purposes)
    (
        "cnss",
        "CNSS — AMO Tadamon, aide sociale directe (démo)",
        "social",
        "amo_tadamon_enrolment asd_payment asd_case_review",
    ),
    (
        "men",
        "Ministère de l'Éducation nationale — bourses (démo)",
        "education",
        "scholarship_outreach",
    ),
)
AGENCY_SCOPES = "agency:lookup agency:query agency:eligibility"
# The identity provider the demo's CNSS signs its officials in with (never contacted: its
# keys are registered, and examples/agency_client.py --official plays its part).
DEMO_IDP = ("cnss", "https://sso.cnss.demo.example")
OFFICE_SCOPES = "rnp:enrol rnp:rectify rsu:register"
AUDITOR_SCOPES = "audit:read"


def register_demo_clients(settings: Settings, credentials: Credentials, console: Console) -> None:
    """OAuth: demo agencies (two sectors), an office, an auditor (their private keys go into
    the credentials); citizens' TOTP secrets."""
    with open_oauth(settings) as oauth:
        existing = {c.client_id for c in oauth.registry.list()}

        def client(
            client_id: str,
            name: str,
            kind: str,
            sector: str,
            scopes: str,
            purposes: str = "",
            redirect_uris: tuple[str, ...] = (),
        ) -> dict[str, Any]:
            public, private = client_keypair(f"{client_id}-{secrets.token_hex(2)}")
            if client_id in existing:
                # A re-run (new issuer or lost credentials file): the old private key is gone,
                # so the client gets a new key pair under the same id.
                oauth.registry.replace_keys(client_id, {"keys": [public]})
                oauth.registry.set_disabled(client_id, False)
            else:
                oauth.registry.add(
                    name=name,
                    kind=kind,
                    sector=sector,
                    jwks={"keys": [public]},
                    scopes=scopes,
                    purposes=purposes,
                    redirect_uris=redirect_uris,
                    client_id=client_id,
                )
            return {"client_id": client_id, "private_jwk": private}

        for client_id, name, sector, purposes in DEMO_AGENCIES:
            registered = client(client_id, name, "agency", sector, AGENCY_SCOPES, purposes)
            agency: dict[str, Any] = {
                "client_id": registered["client_id"],
                "name": name,
                "sector": sector,
                "private_jwk": registered["private_jwk"],
                "scopes": AGENCY_SCOPES,
                "purposes": purposes,
            }
            if client_id == DEMO_IDP[0]:
                idp_public, idp_private = client_keypair(f"{client_id}-idp-{secrets.token_hex(2)}")
                oauth.trust_issuer(client_id, DEMO_IDP[1], {"keys": [idp_public]})
                agency["idp"] = {"issuer": DEMO_IDP[1], "private_jwk": idp_private}
            credentials["agencies"].append(agency)
        office = client(
            "office-casa-demo",
            "Bureau d'enregistrement Casablanca (démo)",
            "office",
            "registration",
            f"openid {OFFICE_SCOPES}",
            redirect_uris=(f"{settings.issuer}/console/callback",),
        )
        credentials["office"] = {**office, "scopes": OFFICE_SCOPES}
        auditor_client = client(
            "cndp-console-demo",
            "CNDP — console d'audit (démo)",
            "auditor",
            "cndp",
            f"openid {AUDITOR_SCOPES}",
            redirect_uris=(f"{settings.issuer}/console/callback",),
        )
        username, password = "cndp-auditor", secrets.token_urlsafe(12)
        staff = oauth.staff("auditor")
        try:
            totp_secret = staff.add_user(username, password)
        except ValueError:
            username = f"cndp-auditor-{secrets.token_hex(2)}"
            totp_secret = staff.add_user(username, password)
        credentials["auditor"] = {
            "username": username,
            "password": password,
            "totp_secret": totp_secret,
            **auditor_client,
        }
        # Two registration officers for the office's desks (/office), who sign in by name: an
        # erasure one asks for, the other approves (four eyes).
        officers = oauth.staff("officer")
        for key, name in (("officer", "officer-demo"), ("second_officer", "officer-demo-2")):
            officer_password = secrets.token_urlsafe(12)
            try:
                officer_secret = officers.add_user(name, officer_password)
            except ValueError:
                name = f"{name}-{secrets.token_hex(2)}"
                officer_secret = officers.add_user(name, officer_password)
            credentials[key] = {
                "username": name,
                "password": officer_password,
                "totp_secret": officer_secret,
            }
        # Citizens another step created get a TOTP secret for the portal sign-in.
        for citizen in credentials.get("citizens") or []:
            if isinstance(citizen, dict) and citizen.get("idcs") and not citizen.get("totp_secret"):
                citizen["totp_secret"] = oauth.citizens.enrol(str(citizen["idcs"]))
    console.print(f"registered {len(DEMO_AGENCIES)} demo agencies, an office and an auditor")


STEPS.append(register_demo_clients)


def register_demo_households(
    settings: Settings, credentials: Credentials, console: Console
) -> None:
    """RSU: the demo population's families become households, scored with the shipped
    (illustrative) models; each scoring is audited."""
    population = credentials.pop("_rnp_population", [])
    if not population:
        return
    records, issued = zip(*population, strict=True)
    services = build_services(settings)
    rng = random.Random(2026)
    credentials["households"] = []
    try:
        for group in group_households(records, issued):
            members, declaration = household_request(rng, group)
            try:
                household = services.households.register_household(members, declaration)
            except HouseholdError:
                continue  # already registered by an earlier demo run
            credentials["households"].append(
                {
                    "household_id": household.household_id,
                    "head_idcs": group[0][0],
                    "size": household.size,
                }
            )
    finally:
        services.close()
    console.print(f"registered {len(credentials['households'])} households in the RSU")


STEPS.append(register_demo_households)


def sign_demo_checkpoint(settings: Settings, credentials: Credentials, console: Console) -> None:
    """Audit: sign a checkpoint over whatever the steps above logged; show how to check it."""
    engine = make_engine(settings.database_urls["audit"])
    main = make_engine(settings.database_urls["main"])
    try:
        log = build_audit_log(settings, engine, main)
        checkpoint = log.issue_checkpoint()
        console.print(
            f"audit log: {checkpoint.tree_size} entries, checkpoint signed; verifier "
            f"key {log.verifier_key} (check it offline: sijill audit verify)"
        )
        log.close()
    finally:
        engine.dispose()
        main.dispose()


STEPS.append(sign_demo_checkpoint)


def empty_credentials(settings: Settings) -> Credentials:
    return {
        "issuer": settings.issuer,
        "agencies": [],
        "office": None,
        "citizens": [],
        "auditor": None,
        "officer": None,
        "second_officer": None,
    }


def initialise(settings: Settings, console: Console) -> Path:
    """Fill a new demo data directory; an initialised one is kept as it is (served again,
    on whatever port: only the address the credentials file names follows it)."""
    path = settings.data_dir / "demo" / "credentials.json"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        existing: Credentials = json.loads(path.read_text())
        console.print("demo data already initialised; reusing it (--reset starts over)")
        if existing.get("issuer") != settings.issuer:
            existing["issuer"] = settings.issuer
            _write_credentials(path, existing)
        return path
    credentials = empty_credentials(settings)
    for step in STEPS:
        step(settings, credentials, console)
    _write_credentials(path, credentials)
    return path


def _write_credentials(path: Path, credentials: Credentials) -> None:
    # The file holds private keys and TOTP secrets of demo accounts: owner-only. Written
    # aside and renamed, so an interrupted write never leaves a half file behind.
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, indent=2, ensure_ascii=False)
    partial.replace(path)


def totp_now(settings: Settings, account: str) -> str:
    """The current TOTP code of a demo citizen (by IDCS), the demo auditor or the officer."""
    import pyotp

    path = settings.data_dir / "demo" / "credentials.json"
    if not path.is_file():
        raise DeploymentError(f"{settings.data_dir} holds no demo (run sijill demo first)")
    credentials: Credentials = json.loads(path.read_text())
    accounts = {str(c["idcs"]): c.get("totp_secret") for c in credentials.get("citizens") or []}
    for staff in ("auditor", "officer", "second_officer"):
        person = credentials.get(staff) or {}
        accounts[str(person.get("username"))] = person.get("totp_secret")
    secret = accounts.get(account)
    if not secret:
        raise DeploymentError(f"{account} is not a demo account with a TOTP secret")
    return str(pyotp.TOTP(secret).now())


def print_web_accounts(settings: Settings, credentials_file: Path, console: Console) -> None:
    """Where the portal and the console are, and whom to sign in as."""
    credentials: Credentials = json.loads(credentials_file.read_text())
    citizens = credentials.get("citizens") or []
    auditor = credentials.get("auditor") or {}
    console.print(f"  Portal:       {settings.issuer}/portal/")
    if citizens:
        first = citizens[0]
        console.print(
            f"    citizen     {first['idcs']} ({first.get('name', '')}), "
            f"code: sijill demo totp {first['idcs']}",
            soft_wrap=True,
        )
    officer = credentials.get("officer") or {}
    if officer:
        console.print(f"  Office:       {settings.issuer}/office/")
        console.print(
            f"    officer     {officer['username']}, password in the credentials file, "
            f"code: sijill demo totp {officer['username']}",
            soft_wrap=True,
        )
    console.print(f"  Console:      {settings.issuer}/console/")
    if auditor:
        console.print(
            f"    auditor     {auditor['username']}, password in the credentials file, "
            f"code: sijill demo totp {auditor['username']}",
            soft_wrap=True,
        )


def remove_demo(settings: Settings, console: Console) -> None:
    """``sijill demo --reset``: remove a demo's data directory, and only a demo's (one that
    holds demo credentials and keeps its databases inside)."""
    data = settings.data_dir
    if not data.exists():
        return
    if not (data / "demo" / "credentials.json").is_file():
        raise DeploymentError(f"--reset removes a demo's data directory only; {data} holds no demo")
    inside = str(data.absolute())
    if any(not url.startswith(f"sqlite:///{inside}/") for url in settings.database_urls.values()):
        raise DeploymentError("--reset removes SQLite stores in the data directory only; the "
                       "configured databases are elsewhere: drop them yourself")  # fmt: skip
    shutil.rmtree(data)
    console.print(f"removed the demo data in {data}")
