"""Demo lab and accounts for `make run`: a clinician and a reviewer, in the Auth emulator and in Django."""

from __future__ import annotations

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.firebase import emulator_host
from accounts.models import Lab
from accounts.services import lab_create, membership_set

DEMO_LAB = "Demo Lab"
DEMO_ACCOUNTS = [
    ("clinician@demo.malaria-detect.test", "demo-clinician-password", "clinician"),
    ("reviewer@demo.malaria-detect.test", "demo-reviewer-password", "reviewer"),
]


class Command(BaseCommand):
    help = "Create the demo lab and its accounts (development only: needs the Firebase Auth emulator)."

    def handle(self, *args, **options):
        host = emulator_host()
        if not host or not settings.FIREBASE_AUTH_EMULATOR_TRUSTED:
            raise CommandError("seed_demo only runs against the Firebase Auth emulator in development")
        lab = Lab.objects.filter(name=DEMO_LAB).first() or lab_create(name=DEMO_LAB)
        base = f"http://{host}/identitytoolkit.googleapis.com/v1/projects/{settings.FIREBASE_PROJECT_ID}/accounts"
        for email, password, role in DEMO_ACCOUNTS:
            response = requests.post(
                base,
                json={"email": email, "password": password, "emailVerified": True},
                headers={"Authorization": "Bearer owner"},
                timeout=10,
            )
            if not response.ok and "EMAIL_EXISTS" not in response.text:
                raise CommandError(f"the Auth emulator refused {email}: {response.text}")
            membership_set(lab=lab, email=email, role=role)
            self.stdout.write(f"  {role:<10} {email}  password: {password}")
