"""Store every user's and membership's email in its canonical form (accounts.models.canonical_email).

Memberships and users are matched by `=` from now on instead of `iexact`. A row whose canonical form is
already taken by another row is left as it is (and then matches nobody until an administrator fixes it),
rather than merging two accounts silently.
"""

import unicodedata

from django.db import migrations


def canonical(email: str) -> str:
    # A copy of accounts.models.canonical_email as it is today: migrations must not follow later edits.
    return unicodedata.normalize("NFC", (email or "").strip()).lower()


def canonicalise(apps, schema_editor):
    for model_name in ("User", "Membership"):
        model = apps.get_model("accounts", model_name)
        for row in model.objects.all().only("id", "email"):
            email = canonical(row.email)
            if email != row.email and not model.objects.filter(email=email).exclude(id=row.id).exists():
                model.objects.filter(id=row.id).update(email=email)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(canonicalise, migrations.RunPython.noop)]
