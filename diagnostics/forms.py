"""Page forms: model forms, so a page checks the models' field rules exactly as the API's model serializers do;
the views hand what they clean to the same services as the API, which enforce the workflow's rules."""

from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from diagnostics.models import WEBHOOK_URL_MAX_LENGTH, Decision, Label, Patient, Result, Review, Sample, Webhook


class PageForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def add_refusal(self, refusal: ValidationError) -> None:
        """A service's refusal, shown under the field it names or above the form."""
        errors = refusal.message_dict if hasattr(refusal, "error_dict") else {NON_FIELD_ERRORS: refusal.messages}
        for field, messages in errors.items():
            self.add_error(field if field in self.fields else None, messages)


class PatientForm(PageForm):
    class Meta:
        model = Patient
        fields = ["identifier", "name", "sex", "birth_year", "notes"]
        labels = {"birth_year": "Year of birth"}
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}


class SampleForm(PageForm):
    class Meta:
        model = Sample
        fields = ["collected_at", "notes"]
        labels = {"collected_at": "Date collected"}
        widgets = {"collected_at": forms.DateInput(attrs={"type": "date"}), "notes": forms.Textarea(attrs={"rows": 3})}


class ReviewForm(PageForm):
    decision = forms.ChoiceField(
        choices=[
            (Decision.CONFIRM, "Confirm the automatic result"),
            (Decision.OVERRIDE, "Override it with the result below"),
        ],
        widget=forms.RadioSelect,
    )
    result = forms.ChoiceField(
        choices=[("", "— choose when overriding —"), *Result.choices],
        required=False,
        label="Result (for an override)",
    )

    class Meta:
        model = Review
        fields = ["decision", "result", "comment"]
        widgets = {"comment": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"comment": "Required: what you saw on the smear or in the cells."}

    CELL_PREFIX = "cell_"
    CELL_CHOICES = [("", "Keep"), *Label.choices]

    def relabels(self) -> list[tuple[int, str]]:
        """Per-cell labels chosen in the grid (fields cell_<image id>) as (image id, label); blank ones are kept."""
        cells = []
        for name, value in self.data.items():
            if name.startswith(self.CELL_PREFIX) and value:
                image_id = name.removeprefix(self.CELL_PREFIX)
                if image_id.isdigit():
                    cells.append((int(image_id), value))
        return cells


class WebhookForm(PageForm):
    # A URL typed without a scheme is taken as https (the model's validator still allows http:// when typed).
    url = forms.URLField(
        assume_scheme="https",
        max_length=WEBHOOK_URL_MAX_LENGTH,
        label="Receiver URL",
        help_text="http:// or https://, at a public address. Events are signed with the secret shown once added.",
    )

    class Meta:
        model = Webhook
        fields = ["url", "description"]
        help_texts = {"description": "Optional: what receives the events (e.g. the lab's information system)."}
