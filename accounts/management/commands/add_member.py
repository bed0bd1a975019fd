from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Lab, Role
from accounts.services import membership_set


class Command(BaseCommand):
    help = "Give the person with this email a role in a lab (they get it when they sign in with Firebase)."

    def add_arguments(self, parser):
        parser.add_argument("--lab", required=True, help="the lab's name")
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)

    def handle(self, *args, lab, email, role, **options):
        try:
            lab_row = Lab.objects.get(name=lab.strip())
        except Lab.DoesNotExist as exc:
            raise CommandError(f"no lab named {lab!r}: create it with create_lab first") from exc
        try:
            membership = membership_set(lab=lab_row, email=email, role=role)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(f"{membership.email} is now a {membership.role} of {lab_row.name}."))
