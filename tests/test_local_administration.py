"""A newcomer administers what `make run` started: `make manage ARGS=...` works on a fresh clone, with no settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from malaria_site.run_local import ROOT
from tests.environments import bare_environment

pytestmark = pytest.mark.slow


def make_manage(var, *arguments: str, **env: str) -> subprocess.CompletedProcess:
    """What `make manage ARGS="..."` runs, on a laptop with nothing configured."""
    return subprocess.run(
        [sys.executable, "-m", "malaria_site.run_local", "manage", *arguments],
        cwd=ROOT,
        env=bare_environment(MALARIA_VAR_DIR=str(var), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_make_manage_runs_the_run_local_command():
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "manage", "ARGS=createsuperuser"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert dry_run.stdout.splitlines()[-1] == ".venv/bin/python -m malaria_site.run_local manage createsuperuser"


def test_a_site_administrator_a_lab_and_a_member_from_a_fresh_state(tmp_path):
    created = make_manage(
        tmp_path,
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "admin@example.org",
        DJANGO_SUPERUSER_PASSWORD="a-long-admin-password",
    )
    assert created.returncode == 0, created.stderr
    assert "Superuser created successfully." in created.stdout

    lab = make_manage(tmp_path, "create_lab", "Lab of the river")
    assert lab.returncode == 0, lab.stderr
    assert "Created lab 'Lab of the river'" in lab.stdout

    member = make_manage(
        tmp_path, "add_member", "--lab", "Lab of the river", "--email", "Nurse@Example.org", "--role", "reviewer"
    )
    assert member.returncode == 0, member.stderr
    assert member.stdout.strip() == "nurse@example.org is now a reviewer of Lab of the river."

    seen = make_manage(
        tmp_path,
        "shell",
        "-c",
        "from accounts.models import Membership, User; "
        "admin = User.objects.get(username='admin'); "
        "print(admin.is_superuser, admin.is_staff, admin.check_password('a-long-admin-password')); "
        "print(*Membership.objects.values_list('lab__name', 'email', 'role').get(), sep='|')",
    )
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.splitlines()[-2:] == ["True True True", "Lab of the river|nurse@example.org|reviewer"]
    assert (tmp_path / "malaria.sqlite3").is_file()
