"""Webhooks (issue 11): signed events reach a receiver this test starts on 127.0.0.1, through real workers.

The receiver answers in one of four modes: ok (204), slow (answers after the delivery timeout), failing
(500) and down (nothing listens). Classification runs in a real Celery worker on the cells queue; deliveries
in a second real worker on the notifications queue, as in production (docker-compose.yml's notifier). The
test settings make retries quick: 3 attempts, 1 then 2 s apart, a 1 s timeout (tests/settings.py).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.models import AuditEvent
from diagnostics import webhooks
from diagnostics.models import DeliveryStatus, Webhook, WebhookDelivery
from diagnostics.webhook_transport import Receiver, receiver_post
from malaria_site.auth_emulator import free_port
from tests.celery_worker import NOTIFICATIONS_QUEUE, CeleryWorker, broker_unreachable, purge_queue, wait_until
from tests.cells import generated_cells, upload
from tests.page_sessions import page_client, text_of
from tests.stored_cells import add_cells

DOCS = Path(__file__).resolve().parents[1] / "docs" / "webhooks.md"
SLOW_SECONDS = 3  # the slow receiver answers after this; deliveries time out after 1 s in the tests


def documented_verify():
    """The receiver's verification function exactly as docs/webhooks.md gives it."""
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 (our own documentation's snippet, tested as written)
    return namespace["verify"]


verify = documented_verify()


class Received:
    def __init__(self, headers: dict[str, str], body: bytes):
        self.at = time.monotonic()
        self.headers = headers
        self.body = body

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class TestReceiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers as its mode says."""

    __test__ = False

    def __init__(self, mode: str):
        self.mode = mode
        self.requests: list[Received] = []
        if mode == "down":
            self.port, self.server = free_port(), None  # nothing listens there: connections are refused
            return
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received(dict(self.headers.items()), body))
                if receiver.mode == "slow":
                    time.sleep(SLOW_SECONDS)
                status = {"ok": 204, "slow": 204, "failing": 500, "redirect": 302}[receiver.mode]
                try:
                    self.send_response(status)
                    if status == 302:
                        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting (the slow mode)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/malaria?lab=a"

    def of_event(self, event_type: str) -> list[Received]:
        return [request for request in self.requests if request.event["type"] == event_type]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver_in():
    started = []

    def start(mode: str) -> TestReceiver:
        started.append(TestReceiver(mode))
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture(scope="module")
def workers(django_db_setup, django_db_blocker):
    """A classification worker (cells queue) and a notifications worker (its own queue), as in production."""
    purge_queue()
    cells = CeleryWorker(beat=False).start()
    notifier = CeleryWorker(queue=NOTIFICATIONS_QUEUE, beat=False).start()
    yield cells, notifier
    notifier.stop()
    cells.stop()
    purge_queue()


def register(person, url: str, description: str = "the lab's LIS") -> dict:
    response = person.client().post("/api/v1/webhooks", {"url": url, "description": description}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def status_of_first_delivery(person, webhook: dict) -> str | None:
    deliveries = deliveries_of(person, webhook)
    return deliveries[0]["status"] if deliveries else None


def deliveries_of(person, webhook: dict) -> list[dict]:
    response = person.client().get(f"/api/v1/webhooks/{webhook['id']}/deliveries")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def new_sample(person, patient) -> int:
    response = person.client().post("/api/v1/samples", {"patient": patient["id"]}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def classified_through_the_worker(person, sample_id: int, cells: int = 12) -> float:
    """Upload generated cells and wait until the worker has classified them all; returns the upload's seconds."""
    started = time.monotonic()
    response = upload(person.client(), sample_id, generated_cells(cells))
    took = time.monotonic() - started
    assert response.status_code == 202, response.content
    client = person.client()
    wait_until(
        lambda: client.get(f"/api/v1/samples/{sample_id}").json()["status"] == "complete", message="classification"
    )
    return took


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # real commits: events are sent after them
def test_events_reach_the_receiver_signed_as_documented_and_are_marked_delivered(
    workers, receiver_in, lab_a, clinician, reviewer, patient
):
    receiver = receiver_in("ok")
    webhook = register(reviewer, receiver.url)
    assert len(webhook["secret"]) >= 40

    sample_id = new_sample(clinician, patient)
    classified_through_the_worker(clinician, sample_id)
    wait_until(lambda: receiver.of_event("sample.classified"), message="the classification event")

    [classified] = receiver.of_event("sample.classified")
    signature = classified.headers["Malaria-Detect-Signature"]
    assert verify(webhook["secret"], classified.body, signature)
    assert not verify("another-secret", classified.body, signature)
    assert not verify(webhook["secret"], classified.body.replace(b"complete", b"processing"), signature)
    assert not verify(webhook["secret"], classified.body, signature, now=time.time() + 301), "a replay is refused"
    event = classified.event
    assert classified.headers["Malaria-Detect-Event-Id"] == event["id"]
    assert event["lab"] == lab_a.pk
    sample = clinician.client().get(f"/api/v1/samples/{sample_id}").json()
    assert event["data"]["sample"]["id"] == sample_id
    assert event["data"]["sample"]["status"] == "complete"
    assert event["data"]["sample"]["result"] == sample["result"]
    assert event["data"]["sample"]["cells"]["classified"] == 12
    assert patient["name"] not in classified.body.decode() and patient["identifier"] not in classified.body.decode()

    wait_until(lambda: status_of_first_delivery(reviewer, webhook) == "delivered", message="delivered")
    [delivery] = deliveries_of(reviewer, webhook)
    assert delivery["event_id"] == event["id"] and delivery["event_type"] == "sample.classified"
    assert (delivery["attempts"], delivery["last_response_code"], delivery["last_error"]) == (1, 204, "")
    assert delivery["delivered_at"] and delivery["payload"] == event

    comment = f"Smear of {patient['name']} read again by hand."
    response = reviewer.client().post(
        f"/api/v1/samples/{sample_id}/reviews", {"decision": "confirm", "comment": comment}, format="json"
    )
    assert response.status_code == 201, response.content
    wait_until(lambda: receiver.of_event("sample.reviewed"), message="the review event")
    [reviewed] = receiver.of_event("sample.reviewed")
    assert verify(webhook["secret"], reviewed.body, reviewed.headers["Malaria-Detect-Signature"])
    assert reviewed.event["data"]["review"]["decision"] == "confirm"
    assert reviewed.event["data"]["review"]["id"] == response.json()["id"]
    assert patient["name"] not in reviewed.body.decode(), "the review's comment stays in the product"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # real commits: events are sent after them
def test_a_slow_receiver_times_out_and_is_retried_without_slowing_uploads_or_classification(
    workers, receiver_in, clinician, reviewer, patient
):
    receiver = receiver_in("slow")
    webhook = register(reviewer, receiver.url)
    first = new_sample(clinician, patient)
    classified_through_the_worker(clinician, first)
    wait_until(lambda: receiver.requests, message="the first attempt")  # the receiver now holds it

    second = new_sample(clinician, patient)
    upload_seconds = classified_through_the_worker(clinician, second)
    assert upload_seconds < 5
    first_delivery = WebhookDelivery.objects.get(webhook_id=webhook["id"], payload__data__sample__id=first)
    assert first_delivery.status == DeliveryStatus.PENDING, "classified while the first event still waits"

    wait_until(
        lambda: WebhookDelivery.objects.get(pk=first_delivery.pk).status == DeliveryStatus.FAILED,
        timeout=90,
        message="the slow receiver's delivery to fail",
    )
    failed = next(d for d in deliveries_of(reviewer, webhook) if d["id"] == first_delivery.pk)
    assert failed["attempts"] == 3
    assert failed["last_error"] == "The receiver did not answer within 1 s."
    assert failed["last_response_code"] is None and failed["delivered_at"] is None
    attempts = [r for r in receiver.requests if r.event["data"]["sample"]["id"] == first]
    assert len(attempts) == 3 and len({r.event["id"] for r in attempts}) == 1, "the same event, three times"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # real commits: events are sent after them
def test_a_failing_receiver_is_retried_with_back_off_then_the_delivery_fails_visibly(
    workers, receiver_in, clinician, reviewer, patient
):
    receiver = receiver_in("failing")
    webhook = register(reviewer, receiver.url)
    sample_id = new_sample(clinician, patient)
    add_cells(sample_id, ["uninfected"] * 5)  # the sample completes here: its event goes to the notifier

    wait_until(lambda: status_of_first_delivery(reviewer, webhook) == "failed", message="the delivery to fail")
    [delivery] = deliveries_of(reviewer, webhook)
    assert (delivery["attempts"], delivery["last_response_code"]) == (3, 500)
    assert delivery["last_error"] == "The receiver answered 500."
    assert delivery["next_attempt_at"] is None

    assert len(receiver.requests) == 3
    for request in receiver.requests:  # each attempt signed anew, each verifies
        assert verify(webhook["secret"], request.body, request.headers["Malaria-Detect-Signature"])
    gaps = [later.at - earlier.at for earlier, later in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, f"back-off of 1 s then 2 s, not {gaps}"

    page = text_of(page_client(reviewer).get("/webhooks"))
    assert f"Sample {sample_id}" in page and "Failed 3 HTTP 500 The receiver answered 500." in page


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # real commits: events are sent after them
def test_a_receiver_that_is_down_is_retried_then_the_delivery_fails(workers, receiver_in, clinician, reviewer, patient):
    receiver = receiver_in("down")
    webhook = register(reviewer, receiver.url)
    add_cells(new_sample(clinician, patient), ["parasitized"] * 2 + ["uninfected"] * 3)

    wait_until(lambda: status_of_first_delivery(reviewer, webhook) == "failed", message="the delivery to fail")
    [delivery] = deliveries_of(reviewer, webhook)
    assert (delivery["attempts"], delivery["last_response_code"]) == (3, None)
    assert delivery["last_error"] == "The connection to the receiver was refused or failed."


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # real commits: events are sent after them
def test_an_event_written_while_the_broker_is_down_is_sent_later_by_the_relay(
    workers, receiver_in, settings, clinician, reviewer, patient
):
    receiver = receiver_in("ok")
    webhook = register(reviewer, receiver.url)
    with broker_unreachable():
        add_cells(new_sample(clinician, patient), ["uninfected"] * 3)  # the sample completes; its event is kept
    delivery = WebhookDelivery.objects.get(webhook_id=webhook["id"])
    assert (delivery.status, delivery.enqueued_at) == (DeliveryStatus.PENDING, None), "written, never sent"
    time.sleep(0.5)
    assert receiver.requests == []

    settings.QUEUED_NEVER_SENT_SECONDS = 0  # instead of waiting 30 s for the periodic relay
    assert webhooks.deliveries_resend_unsent() == [delivery.pk]
    wait_until(lambda: status_of_first_delivery(reviewer, webhook) == "delivered", message="the relayed delivery")
    assert [request.event["id"] for request in receiver.requests] == [str(delivery.event_id)]
    assert webhooks.deliveries_resend_unsent() == [], "a delivered event is not sent again"


@pytest.mark.django_db
def test_deliveries_the_broker_lost_are_sent_again_at_once(reviewer, receiver_in, settings):
    """Redis restarted empty: a delivery sent a minute ago (or waiting for its retry) is gone with it."""
    import redis

    webhook = Webhook.objects.get(pk=register(reviewer, receiver_in("ok").url)["id"])
    sent = WebhookDelivery.objects.create(
        webhook=webhook, event_type="sample.classified", payload={"id": "x"}, enqueued_at=timezone.now()
    )
    done = WebhookDelivery.objects.create(
        webhook=webhook,
        event_type="sample.classified",
        payload={"id": "y"},
        enqueued_at=timezone.now(),
        status=DeliveryStatus.DELIVERED,
    )
    try:
        assert webhooks.deliveries_resend_unsent() == [], "a broker that kept its messages: nothing twice"
        assert webhooks.deliveries_resend_unsent(broker_emptied=True) == [sent.pk]
        assert done.pk not in webhooks.deliveries_resend_unsent(broker_emptied=True)
    finally:
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(NOTIFICATIONS_QUEUE)  # for no notifier


# -- server-side request forgery -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://localhost:6379/", "loopback"),
        ("http://[::1]:8000/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10:5432/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0:8000/", "unspecified"),
        ("http://100.64.0.1/", "not public"),
    ],
)
def test_an_internal_address_is_refused_when_registering(settings, reviewer, url, reason):
    settings.WEBHOOK_ALLOWED_NETWORKS = []  # as in production
    response = reviewer.client().post("/api/v1/webhooks", {"url": url}, format="json")
    assert response.status_code == 400, response.content
    [message] = response.json()["url"]
    assert f"at an address that is {reason}" in message and "only sent to public addresses" in message
    assert not Webhook.objects.exists()


@pytest.mark.pure
@pytest.mark.parametrize(
    "address, reason",
    [
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("64:ff9b::a01:203", "private"),  # NAT64 of 10.1.2.3
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("64:ff9b::808:808", None),  # NAT64 of a public address
    ],
)
def test_ipv4_addresses_wrapped_in_ipv6_are_judged_by_the_ipv4_address(address, reason):
    import ipaddress

    from diagnostics.webhook_transport import address_refusal

    assert address_refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/hook", "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "http://user:pw@example.org/"],
)
def test_only_plain_http_and_https_urls_are_accepted(reviewer, url):
    response = reviewer.client().post("/api/v1/webhooks", {"url": url}, format="json")
    assert response.status_code == 400, response.content
    assert "url" in response.json()
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_each_attempt_checks_the_address_again(receiver_in, reviewer):
    """Registered while 127.0.0.1 was allowed; at delivery time it is not: nothing is sent, no retry follows."""
    receiver = receiver_in("ok")
    webhook = Webhook.objects.get(pk=register(reviewer, receiver.url)["id"])
    delivery = WebhookDelivery.objects.create(webhook=webhook, event_type="sample.classified", payload={"id": "x"})
    with override_settings(WEBHOOK_ALLOWED_NETWORKS=[]):
        assert webhooks.delivery_send(delivery_id=delivery.pk, retry_in=1) == "failed"
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.next_attempt_at is None
    assert "only sent to public addresses" in delivery.last_error
    assert receiver.requests == []


@pytest.mark.pure
def test_the_connection_goes_to_the_checked_address_not_to_the_name_resolved_again(receiver_in):
    receiver = receiver_in("ok")
    # A name that resolves nowhere: the request can only arrive because the checked address is used.
    pinned = Receiver(scheme="http", host="receiver.invalid", port=receiver.port, target="/x", address="127.0.0.1")
    assert receiver_post(pinned, body=b"{}", headers={"Content-Type": "application/json"}, timeout=2) == 204
    assert receiver.requests[0].headers["Host"] == f"receiver.invalid:{receiver.port}"


def tls_receiver(tmp_path, host: str = "receiver.example"):
    """An https receiver on 127.0.0.1 with a certificate for `host` from a CA made here; returns its port, the
    CA's PEM file and the Host headers it saw. (cryptography comes with firebase-admin.)"""
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder(subject_name=name("Lab CA"), issuer_name=name("Lab CA"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    certificate = (
        x509.CertificateBuilder(subject_name=name(host), issuer_name=ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, chain, key_file = tmp_path / "ca.pem", tmp_path / "receiver.pem", tmp_path / "receiver.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, str(ca_file), hosts


@pytest.mark.pure
def test_https_goes_to_the_checked_address_and_checks_the_certificate_against_the_name(tmp_path):
    """The pinned connection still speaks TLS to the name: the certificate must be for it and from a trusted CA."""
    from diagnostics.webhook_transport import ReceiverUnreachable

    server, ca_file, hosts = tls_receiver(tmp_path)
    port = server.server_address[1]
    try:
        # The name resolves nowhere: the request arrives only because the checked address is used.
        pinned = Receiver(scheme="https", host="receiver.example", port=port, target="/x", address="127.0.0.1")
        assert receiver_post(pinned, body=b"{}", headers={}, timeout=2, ca_bundle=ca_file) == 204
        assert hosts == [f"receiver.example:{port}"]
        with pytest.raises(ReceiverUnreachable, match="certificate could not be verified"):
            receiver_post(pinned, body=b"{}", headers={}, timeout=2)  # public CAs only: this one is unknown
        other = Receiver(scheme="https", host="other.example", port=port, target="/x", address="127.0.0.1")
        with pytest.raises(ReceiverUnreachable, match="certificate could not be verified"):
            receiver_post(other, body=b"{}", headers={}, timeout=2, ca_bundle=ca_file)  # not its name
        assert len(hosts) == 1, "nothing was sent where the certificate did not hold"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.pure
def test_a_redirect_is_not_followed(receiver_in):
    receiver = receiver_in("redirect")
    target = Receiver(scheme="http", host="127.0.0.1", port=receiver.port, target="/", address="127.0.0.1")
    assert receiver_post(target, body=b"{}", headers={}, timeout=2) == 302
    assert len(receiver.requests) == 1


# -- who may do what -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_clinician_may_neither_register_nor_see_webhooks(clinician, reviewer):
    webhook = register(reviewer, "http://127.0.0.1:9/hook")
    client = clinician.client()
    assert client.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/x"}, format="json").status_code == 403
    assert client.get("/api/v1/webhooks").status_code == 403
    assert client.get(f"/api/v1/webhooks/{webhook['id']}").status_code == 403
    assert client.delete(f"/api/v1/webhooks/{webhook['id']}").status_code == 403
    assert client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").status_code == 403
    assert Webhook.objects.count() == 1
    assert page_client(clinician).get("/webhooks").status_code == 403
    assert "Webhooks" not in text_of(page_client(clinician).get("/"))


@pytest.mark.django_db
def test_another_lab_cannot_see_or_remove_a_webhook_nor_its_events(make_person, lab_b, reviewer, clinician, patient):
    webhook = register(reviewer, "http://127.0.0.1:9/hook")
    other = make_person("reviewer", lab_b)
    client = other.client()
    assert client.get("/api/v1/webhooks").json()["results"] == []
    assert client.get(f"/api/v1/webhooks/{webhook['id']}").status_code == 404
    assert client.delete(f"/api/v1/webhooks/{webhook['id']}").status_code == 404
    assert client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").status_code == 404
    assert page_client(other).post(f"/webhooks/{webhook['id']}/delete").status_code == 404
    assert Webhook.objects.filter(pk=webhook["id"]).exists()

    from tests.factories import SampleFactory

    add_cells(SampleFactory(patient__lab=lab_b).pk, ["uninfected"])  # lab B's sample completes
    assert not WebhookDelivery.objects.exists(), "lab A's receiver hears nothing of lab B"
    add_cells(new_sample(clinician, patient), ["uninfected"])
    assert WebhookDelivery.objects.filter(webhook_id=webhook["id"]).count() == 1
    purge_queue()


@pytest.mark.django_db
def test_registering_and_removing_are_audited(reviewer):
    webhook = register(reviewer, "http://127.0.0.1:9/hook")
    assert reviewer.client().get(f"/api/v1/webhooks/{webhook['id']}").json()["secret"] == webhook["secret"]
    assert reviewer.client().delete(f"/api/v1/webhooks/{webhook['id']}").status_code == 204
    events = AuditEvent.objects.filter(object_type="webhook", object_id=str(webhook["id"])).order_by("id")
    assert [(e.action, e.actor_email, e.detail["url"]) for e in events] == [
        ("webhook.create", reviewer.email, "http://127.0.0.1:9/hook"),
        ("webhook.delete", reviewer.email, "http://127.0.0.1:9/hook"),
    ]
    assert reviewer.client().get(f"/api/v1/webhooks/{webhook['id']}").status_code == 404


@pytest.mark.django_db
def test_the_page_lists_adds_and_removes_receivers(reviewer):
    client = page_client(reviewer)
    page = client.get("/webhooks")
    assert page.status_code == 200
    assert 'href="/webhooks" aria-current="page">Webhooks</a>' in page.content.decode()

    refused = client.post("/webhooks", {"url": "http://169.254.169.254/latest/meta-data/", "description": ""})
    assert refused.status_code == 400
    assert "at an address that is link-local" in text_of(refused)

    added = client.post("/webhooks", {"url": "http://127.0.0.1:9/lis", "description": "Our LIS"}, follow=True)
    webhook = Webhook.objects.get()
    text = text_of(added)
    assert "Webhook added: events now go to http://127.0.0.1:9/lis." in text
    assert "Our LIS" in text and webhook.secret in text

    removed = client.post(f"/webhooks/{webhook.pk}/delete", follow=True)
    assert "Webhook removed" in text_of(removed) and not Webhook.objects.exists()


@pytest.mark.pure
def test_a_ca_bundle_that_is_not_there_stops_start_up():
    from tests.test_emulator_guard import run_python

    result = run_python(
        "import django; django.setup()", DJANGO_SECRET_KEY="x" * 50, WEBHOOK_CA_BUNDLE="/nowhere/lab-ca.pem"
    )
    assert result.returncode != 0 and "WEBHOOK_CA_BUNDLE='/nowhere/lab-ca.pem' is not a file" in result.stderr
