"""Setting up labs and their members from the command line: create_lab and add_member."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_lab(db):
    from accounts.models import AuditEvent, Lab

    output = run("create_lab", "  Lab X ")
    lab = Lab.objects.get(name="Lab X")
    assert f"Created lab 'Lab X' (id {lab.pk})" in output
    event = AuditEvent.objects.get(action="lab.create")
    assert (event.lab, event.detail) == (lab, {"name": "Lab X"})


def test_create_lab_twice_is_an_error(db):
    from accounts.models import Lab

    run("create_lab", "Lab X")
    with pytest.raises(CommandError, match="already exists"):
        run("create_lab", "Lab X")
    assert list(Lab.objects.values_list("name", flat=True)) == ["Lab X"]


def test_a_lab_needs_a_name(db):
    with pytest.raises(CommandError, match="needs a name"):
        run("create_lab", "   ")


def test_add_member_creates_a_membership(lab_a):
    from accounts.models import Membership

    output = run("add_member", "--lab", lab_a.name, "--email", "  Nurse@Example.ORG ", "--role", "clinician")
    assert output.strip() == f"nurse@example.org is now a clinician of {lab_a.name}."
    membership = Membership.objects.get()
    assert (membership.lab, membership.email, membership.role) == (lab_a, "nurse@example.org", "clinician")


def test_add_member_again_changes_the_role_whatever_the_case_of_the_email(lab_a):
    from accounts.models import AuditEvent, Membership

    run("add_member", "--lab", lab_a.name, "--email", "nurse@example.org", "--role", "clinician")
    run("add_member", "--lab", lab_a.name, "--email", "NURSE@example.org", "--role", "reviewer")
    assert list(Membership.objects.values_list("email", "role")) == [("nurse@example.org", "reviewer")]
    changes = [e.detail for e in AuditEvent.objects.filter(action="membership.role_change").order_by("id")]
    assert changes == [
        {"email": "nurse@example.org", "from": None, "to": "clinician"},
        {"email": "nurse@example.org", "from": "clinician", "to": "reviewer"},
    ]


def test_add_member_to_an_unknown_lab_is_an_error(db):
    from accounts.models import Membership

    with pytest.raises(CommandError, match="no lab named 'Nowhere': create it with create_lab first"):
        run("add_member", "--lab", "Nowhere", "--email", "a@example.org", "--role", "clinician")
    assert not Membership.objects.exists()


def test_a_person_in_another_lab_cannot_be_added(lab_a, lab_b):
    from accounts.models import Membership

    run("add_member", "--lab", lab_a.name, "--email", "nurse@example.org", "--role", "clinician")
    with pytest.raises(CommandError, match=f"already a member of {lab_a.name}"):
        run("add_member", "--lab", lab_b.name, "--email", "Nurse@example.org", "--role", "reviewer")
    assert list(Membership.objects.values_list("lab", "role")) == [(lab_a.id, "clinician")]


def test_an_unknown_role_is_an_error(lab_a):
    with pytest.raises(CommandError, match="invalid choice: 'admin'"):
        run("add_member", "--lab", lab_a.name, "--email", "a@example.org", "--role", "admin")


def test_the_person_gets_the_lab_and_role_at_their_next_request(make_person, lab_a):
    person = make_person("clinician")  # signed up in Firebase, in no lab yet
    client = person.client()
    assert client.get("/api/v1/me").status_code == 403
    run("add_member", "--lab", lab_a.name, "--email", person.email.upper(), "--role", "reviewer")
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json() == {"email": person.email, "role": "reviewer", "lab": {"id": lab_a.id, "name": lab_a.name}}
    run("add_member", "--lab", lab_a.name, "--email", person.email, "--role", "clinician")
    assert client.get("/api/v1/me").json()["role"] == "clinician"
