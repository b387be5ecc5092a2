"""Citizens' notifications through HTTP, with the delivery job running as ``sijill serve`` runs
it (the app's lifespan starts it): an agency's access reaches the person's channel within a
minute and says nothing of the data; the scope filters; a failing sender is retried; opting
out stops the messages and drops those not yet sent; the address lives in the vault only."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from audit import EntryFilter
from consent import tables as consent_tables
from consent.outbox import ACCESS_NOTICE
from gateway.settings import SettingsError, load_settings
from gateway.web.activation import issue_activation_code
from tests.gateway.conftest import FATIMA, World
from tests.gateway.test_agency_api import lookup, pseudonym, query
from tests.gateway.test_breaches import _officer, _register
from tests.gateway.test_cli import run_sijill

EMAIL = "fatima.benali@example.ma"
MOBILE = "+212611223344"
MINUTE_S = 60.0
EVERY_S = 1.0


@pytest.fixture
def sender_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The demo's file sender, unless a test asks (indirectly) for "smtp" or "sms"."""
    which = getattr(request, "param", "file")
    if which == "smtp":
        _box, port = request.getfixturevalue("mailbox")
        return {
            "notify_sender": "smtp",
            "notify_smtp_host": "127.0.0.1",
            "notify_smtp_port": port,
            "notify_smtp_from": "notices@sijill.example",
        }
    if which == "sms":
        _gateway, port = request.getfixturevalue("sms_gateway")
        return {
            "notify_sender": "sms-http",
            "notify_sms_url": f"http://127.0.0.1:{port}/send",
            "notify_sms_token": "gateway-token",
        }
    return {"notify_sender": "file"}


@pytest.fixture
def settings(tmp_path: Path, migrated_urls: dict[str, str], sender_settings: dict[str, Any]):  # type: ignore[no-untyped-def]
    return load_settings(
        data_dir=tmp_path / "data",
        database_url=migrated_urls["main"],
        host="127.0.0.1",
        port=8000,
        notify_every_seconds=EVERY_S,
        **sender_settings,
    )


def _me(world: World, method: str, name: str = "fatima", **kwargs: Any) -> Any:
    token = world.citizen_token(name)
    return world.api.request(
        method, "/v1/me/notifications", headers={"Authorization": f"Bearer {token}"}, **kwargs
    )


def _opt_in(world: World, **body: Any) -> Any:
    response = _me(world, "PUT", json={"channel": "email", "address": EMAIL, **body})
    assert response.status_code == 200, response.text
    return response.json()


def _sent(world: World) -> list[dict[str, Any]]:
    path = world.services.settings.data_dir / "notifications.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _wait(found: Callable[[], Any], timeout_s: float = MINUTE_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("nothing arrived in time")


def _job_passed(world: World, index: int) -> None:
    """Wait until the delivery job has read the audit log past ``index``."""
    preferences = world.services.notifications.preferences
    _wait(lambda: (preferences.cursor() or -1) >= index)


def _last_index(world: World) -> int:
    return world.audit_size() - 1


# Every value the register holds about Fatima, and her identifiers: none may be in a notice.
def _secrets(world: World) -> list[str]:
    idcs = world.people["fatima"]
    values = [str(v) for v in FATIMA.values() if len(str(v)) >= 3]
    return [*values, FATIMA["phone"][-6:], idcs, world.services.vault.subject_tag(idcs)]


def test_an_agency_access_reaches_the_citizens_channel_within_a_minute_and_names_no_value(
    world: World,
) -> None:
    _opt_in(world, language="en")
    started = time.monotonic()
    pseudo = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    read = query(world, "cnss", pseudo, ["given_name_lat", "birth_date"], "amo_tadamon_enrolment")
    assert read.status_code == 200, read.text
    _wait(lambda: _sent(world))
    assert time.monotonic() - started < MINUTE_S
    # The lookup and the read: two uses, two notices.
    messages = _wait(lambda: (found := _sent(world)) and len(found) >= 2 and found)
    assert time.monotonic() - started < MINUTE_S
    assert {m["to"] for m in messages} == {EMAIL}
    assert {m["channel"] for m in messages} == {"email"}
    released = [str(v) for v in read.json()["released"].values()]
    for message in messages:
        assert message["language"] == "en"
        assert (
            "cnss accessed your record for the purpose “Enrolment in AMO Tadamon”"
            in (message["text"])
        )
        for secret in [*_secrets(world), *released, pseudo]:
            assert secret not in message["text"]
            assert secret not in message["subject"]
    assert len(messages) == 2


def test_scope_denials_sends_nothing_for_an_allowed_access(world: World) -> None:
    _opt_in(world, scope="denials", language="fr")
    pseudo = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    allowed = query(world, "cnss", pseudo, ["given_name_lat"], "amo_tadamon_enrolment")
    assert allowed.status_code == 200
    # A purpose that rests on a consent Fatima never gave: refused (and answered as if she
    # were unknown), on the record under her tag.
    assert lookup(world, "men", "AB123456", "scholarship_outreach").status_code == 404
    messages = _wait(lambda: _sent(world))
    _job_passed(world, _last_index(world))
    time.sleep(2 * EVERY_S)
    messages = _sent(world)
    assert len(messages) == 1
    assert "s'est vu refuser" in messages[0]["text"]


def test_scope_consent_tells_only_of_uses_resting_on_consent(world: World) -> None:
    _opt_in(world, scope="consent")
    pseudo = pseudonym(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    assert (
        query(world, "cnss", pseudo, ["given_name_lat"], "amo_tadamon_enrolment").status_code == 200
    )
    _job_passed(world, _last_index(world))
    time.sleep(2 * EVERY_S)
    assert _sent(world) == []


def test_opting_out_stops_messages_and_shreds_the_address(world: World) -> None:
    _opt_in(world)
    lookup(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    _wait(lambda: _sent(world))
    assert _me(world, "DELETE").status_code == 204
    assert _me(world, "GET").status_code == 404
    lookup(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    _job_passed(world, _last_index(world))
    time.sleep(2 * EVERY_S)
    assert len(_sent(world)) == 1
    assert _me(world, "DELETE").status_code == 404


def test_opting_out_drops_the_notices_not_yet_sent(world: World) -> None:
    _opt_in(world)
    for job in world.services.jobs:
        job.stop()  # nothing is sent while the notices wait
    idcs = world.people["fatima"]
    tag = world.services.vault.subject_tag(idcs)
    issue_activation_code(
        world.services, idcs, {"kind": "office", "id": "office-fes", "sector": None}
    )
    outbox = consent_tables.outbox
    pending = select(outbox.c.id).where(
        outbox.c.recipient == tag, outbox.c.delivered_at_ns.is_(None)
    )
    with world.services.engines["main"].connect() as conn:
        assert len(conn.execute(pending).all()) == 1
    assert _me(world, "DELETE").status_code == 204
    with world.services.engines["main"].connect() as conn:
        assert conn.execute(pending).all() == []


def test_the_address_is_kept_in_the_vault_and_read_under_a_recorded_decision(world: World) -> None:
    chosen = _opt_in(world, channel="sms", address=MOBILE, scope="all", language="ar")
    assert (chosen["channel"], chosen["address"], chosen["scope"]) == ("sms", MOBILE, "all")
    got = _me(world, "GET")
    assert got.status_code == 200 and got.json()["address"] == MOBILE
    table = consent_tables.notification_preferences
    with world.services.engines["main"].connect() as conn:
        row = conn.execute(select(table)).one()
    assert MOBILE not in json.dumps([str(v) for v in row])
    assert row.subject == world.services.vault.subject_tag(world.people["fatima"])
    lookup(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    [message] = _wait(lambda: _sent(world))
    assert (message["to"], message["channel"], message["language"]) == (MOBILE, "sms", "ar")
    # The notifier's read of the address is on the record, filed under Fatima's tag.
    reads = world.services.audit.entries(EntryFilter(action="deliver_notice"), after=-1)
    assert [(e.entry.actor["kind"], e.entry.subject, e.entry.outcome) for e in reads] == [
        ("system", row.subject, "allow")
    ]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"channel": "email", "address": "not an address"}, "invalid-address"),
        ({"channel": "sms", "address": "0612345678"}, "invalid-address"),
        ({"channel": "fax", "address": "+212612345678"}, "validation-error"),
        ({"channel": "email", "address": EMAIL, "scope": "everything"}, "validation-error"),
    ],
)
def test_a_bad_choice_is_refused_whole(world: World, body: dict[str, Any], kind: str) -> None:
    size = world.audit_size()
    response = _me(world, "PUT", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith(kind)
    assert body["address"] not in response.text
    assert _me(world, "GET").status_code == 404
    assert world.audit_size() == size + 1  # the GET's decision; the refused PUT reached none


@pytest.mark.parametrize("sender_settings", ["smtp"], indirect=True)
def test_a_channel_no_sender_serves_is_refused(world: World) -> None:
    response = _me(world, "PUT", json={"channel": "sms", "address": MOBILE})
    assert response.status_code == 422
    assert response.json()["type"].endswith("channel-unavailable")


def test_an_activation_code_goes_out_by_the_chosen_channel(world: World) -> None:
    _opt_in(world, language="fr")
    issued = issue_activation_code(
        world.services,
        world.people["fatima"],
        {"kind": "office", "id": "office-fes", "sector": None},
    )
    [message] = _wait(lambda: _sent(world))
    assert issued.code in message["text"]
    assert "code d'activation" in message["subject"]
    assert world.people["fatima"] not in message["text"]


def test_a_breach_notice_reaches_the_person_by_their_channel(world: World) -> None:
    _opt_in(world, language="en")
    officer = _officer(world)
    breach = _register(world, officer)
    path = f"/v1/breaches/{breach['id']}"
    for step, body in (("assessment", {"risk": "high"}), ("cndp-notification", {})):
        assert world.api.post(f"{path}/{step}", json=body, headers=officer).status_code < 300
    people = [world.people["fatima"], world.people["youssef"]]
    sent = world.api.post(f"{path}/person-notices", json={"persons": people}, headers=officer)
    assert sent.status_code == 200, sent.text
    [message] = _wait(lambda: _sent(world))
    assert message["to"] == EMAIL  # Youssef chose no channel: his notice waits
    assert "personal-data breach" in message["subject"]
    assert breach["title"] in message["text"]
    # (The title names the office's town, Fès, which is also where Fatima was born.)
    for secret in [s for s in _secrets(world) if s not in breach["title"]]:
        assert secret not in message["text"]


def test_sijill_notifications_deliver_sends_what_the_server_did_not(
    world: World, settings: Any
) -> None:
    for job in world.services.jobs:
        job.stop()  # the operator runs the delivery from the shell instead
    _opt_in(world)
    lookup(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    env = {
        "SIJILL_DATA_DIR": str(settings.data_dir),
        "SIJILL_DATABASE_URL": settings.database_urls["main"],
    }
    done = run_sijill("notifications", "deliver", "--once", env=env)
    assert done.returncode == 0, done.stderr
    assert "1 sent, 0 to retry" in done.stdout
    assert [m["to"] for m in _sent(world)] == [EMAIL]


# -- the real senders ---------------------------------------------------------------------------


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[_Mailbox, int]]:
    box = _Mailbox()
    with socket.socket() as probe:  # aiosmtpd's controller needs a port number up front
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


class _SmsGateway(BaseHTTPRequestHandler):
    """Fails the first ``fail`` messages with a 503, then takes them."""

    fail: ClassVar[int] = 1
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        if cls.fail > 0:
            cls.fail -= 1
            self.send_response(503)
        else:
            cls.received.append({"auth": self.headers.get("Authorization"), **body})
            self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sms_gateway() -> Iterator[tuple[type[_SmsGateway], int]]:
    handler = type("Gateway", (_SmsGateway,), {"fail": 1, "received": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("sender_settings", ["smtp"], indirect=True)
def test_an_access_reaches_a_real_smtp_server_in_the_persons_language(
    world: World, mailbox: tuple[_Mailbox, int]
) -> None:
    _opt_in(world, language="ar")
    lookup(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    box = mailbox[0]
    _wait(lambda: box.messages)
    [(recipients, mail)] = box.messages
    assert recipients == [EMAIL]
    assert mail["From"] == "notices@sijill.example"
    assert mail["Content-Language"] == "ar"
    text = mail.get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
    assert "اطلعت" in text
    for secret in _secrets(world):
        assert secret not in text


@pytest.mark.parametrize("sender_settings", ["sms"], indirect=True)
def test_a_failing_sender_is_retried_until_it_takes_the_message(
    world: World, sms_gateway: tuple[type[_SmsGateway], int]
) -> None:
    _opt_in(world, channel="sms", address=MOBILE)
    started = time.monotonic()
    lookup(world, "cnss", "AB123456", "amo_tadamon_enrolment")
    gateway = sms_gateway[0]
    [taken] = _wait(lambda: gateway.received)
    assert time.monotonic() - started < MINUTE_S
    assert gateway.fail == 0  # the first attempt was refused
    assert (taken["to"], taken["auth"]) == (MOBILE, "Bearer gateway-token")
    outbox = consent_tables.outbox
    with world.services.engines["main"].connect() as conn:
        row = conn.execute(select(outbox).where(outbox.c.event == ACCESS_NOTICE)).one()
    assert (row.attempts, row.last_status) == (2, 202)
    assert row.delivered_at_ns is not None


@pytest.mark.parametrize(
    ("settings_in", "says"),
    [
        ({"notify_sender": "fax"}, "SIJILL_NOTIFY_SENDER lists senders among"),
        ({"notify_sender": "sms-http"}, "SIJILL_NOTIFY_SENDER names sms-http: set"),
        (
            {"notify_sender": "sms-http", "notify_sms_url": "http://sms.example/send"},
            "SIJILL_NOTIFY_SMS_URL must be an https:// URL",
        ),
    ],
)
def test_a_sender_setting_that_cannot_work_stops_the_start(
    settings_in: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(**settings_in)
    assert str(refused.value).startswith(says)
