from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import lab_create


class Command(BaseCommand):
    help = "Create a lab (the boundary of what its members can see)."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        try:
            lab = lab_create(name=name)
        except ValidationError as exc:
            raise CommandError(f"cannot create lab {name!r}: {'; '.join(exc.messages)}") from exc
        self.stdout.write(self.style.SUCCESS(f"Created lab {lab.name!r} (id {lab.pk})."))
