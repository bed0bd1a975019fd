"""Rows for tests that are not about the API: labs, people, patients, samples, cell images, predictions, reviews.

Factories write rows directly (no service, no audit event, no emulator): a test about what follows an upload
starts from the rows an upload leaves. Counts and results of a sample are the services' job: call
`diagnostics.services.sample_refresh` after adding cells, as `tests.stored_cells.add_cells` does.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import factory
from django.core.files.base import ContentFile
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import Lab, Membership, Role, User
from diagnostics.models import (
    CellImage,
    CellImageStatus,
    CellRelabel,
    Decision,
    Field,
    FieldStatus,
    Label,
    Patient,
    Prediction,
    Result,
    Review,
    Sample,
)
from tests.cells import cell_png

MODEL_VERSION = "test-model"


def days_ago(days: int) -> str:
    """The lab's local date `days` days back, in ISO form, as the API and the exports write it."""
    return (timezone.localdate() - dt.timedelta(days=days)).isoformat()


def new_sample(patient_id: int, *, collected_at: str | None = None, created_by: User | None = None) -> Sample:
    """A sample of an existing patient (in the patient's lab), as rows: for tests that are not about creating one."""
    patient = Patient.objects.get(pk=patient_id)
    return SampleFactory(
        patient=patient, collected_at=collected_at or timezone.localdate().isoformat(), created_by=created_by
    )


class LabFactory(DjangoModelFactory):
    class Meta:
        model = Lab

    name = factory.Sequence(lambda n: f"Lab {n}")


class UserFactory(DjangoModelFactory):
    """A person who has signed in once (the row Firebase sign-in creates)."""

    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"person-{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    firebase_uid = factory.LazyAttribute(lambda o: f"uid-{o.username}")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    lab = factory.SubFactory(LabFactory)
    email = factory.Sequence(lambda n: f"member-{n}@example.org")
    role = Role.CLINICIAN


class PatientFactory(DjangoModelFactory):
    class Meta:
        model = Patient

    lab = factory.SubFactory(LabFactory)
    identifier = factory.Sequence(lambda n: f"P-{n:05}")
    name = "Ada Lovelace"


class SampleFactory(DjangoModelFactory):
    class Meta:
        model = Sample

    patient = factory.SubFactory(PatientFactory)
    lab = factory.SelfAttribute("patient.lab")
    collected_at = factory.LazyFunction(timezone.localdate)


class CellImageFactory(DjangoModelFactory):
    """A stored cell image: a generated PNG saved through the storage, as an upload leaves it (queued)."""

    class Meta:
        model = CellImage

    class Params:
        png = factory.LazyFunction(cell_png)

    sample = factory.SubFactory(SampleFactory)
    original_filename = factory.Sequence(lambda n: f"cell-{n}.png")
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.png).hexdigest())
    width = factory.LazyAttribute(lambda o: _size(o.png)[0])
    height = factory.LazyAttribute(lambda o: _size(o.png)[1])
    format = "PNG"
    byte_size = factory.LazyAttribute(lambda o: len(o.png))
    # Saved by the storage when the row is saved, under the model's upload_to (cells/lab-N/sample-N/...).
    file = factory.LazyAttribute(lambda o: ContentFile(o.png, name="cell.png"))
    status = CellImageStatus.QUEUED


def field_png(width: int = 640, height: int = 480) -> bytes:
    """A plain photograph-sized PNG (no cells): for tests about a field row, not about finding cells."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (215, 225, 215)).save(buffer, format="PNG")
    return buffer.getvalue()


class FieldFactory(DjangoModelFactory):
    """A stored field photograph as an upload leaves it (queued); pass `png` for the pixels."""

    class Meta:
        model = Field

    class Params:
        png = factory.LazyFunction(field_png)

    sample = factory.SubFactory(SampleFactory)
    original_filename = factory.Sequence(lambda n: f"field-{n}.png")
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.png).hexdigest())
    width = factory.LazyAttribute(lambda o: _size(o.png)[0])
    height = factory.LazyAttribute(lambda o: _size(o.png)[1])
    format = "PNG"
    byte_size = factory.LazyAttribute(lambda o: len(o.png))
    file = factory.LazyAttribute(lambda o: ContentFile(o.png, name="field.png"))
    status = FieldStatus.QUEUED


def _size(png: bytes) -> tuple[int, int]:
    # The IHDR chunk of a PNG: width and height right after the signature and the chunk header.
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


class PredictionFactory(DjangoModelFactory):
    """The model's call on a cell; the image is marked classified (the worker writes both at once)."""

    class Meta:
        model = Prediction

    image = factory.SubFactory(CellImageFactory, status=CellImageStatus.CLASSIFIED)
    label = Label.UNINFECTED
    probability = factory.LazyAttribute(
        lambda o: 0.5 if o.uncertain else (0.97 if o.label == Label.PARASITIZED else 0.03)
    )
    uncertain = False
    model_version = MODEL_VERSION


class ReviewFactory(DjangoModelFactory):
    class Meta:
        model = Review

    sample = factory.SubFactory(SampleFactory)
    reviewer = factory.SubFactory(UserFactory)
    decision = Decision.CONFIRM
    result = factory.LazyAttribute(lambda o: o.sample.result or Result.NEGATIVE)
    comment = "Checked under the microscope."


class CellRelabelFactory(DjangoModelFactory):
    class Meta:
        model = CellRelabel

    review = factory.SubFactory(ReviewFactory)
    image = factory.SubFactory(CellImageFactory, sample=factory.SelfAttribute("..review.sample"))
    label = Label.PARASITIZED
