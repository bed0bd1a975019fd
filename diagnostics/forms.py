"""Page forms: they render labelled fields and convert types. The rules are the API's (its serializers and
the services), applied by the views, so a page and an API call accept and refuse the same things."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from diagnostics.models import Decision, Label, Result, Sex


class PageForm(forms.Form):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class PatientForm(PageForm):
    identifier = forms.CharField(max_length=64, help_text="The lab's record number for this patient.")
    name = forms.CharField(max_length=200, required=False)
    sex = forms.ChoiceField(choices=Sex.choices, initial=Sex.UNKNOWN)
    birth_year = forms.IntegerField(required=False, label="Year of birth")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class SampleForm(PageForm):
    collected_at = forms.DateField(
        label="Date collected", initial=timezone.localdate, widget=forms.DateInput(attrs={"type": "date"})
    )
    notes = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


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
    comment = forms.CharField(
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required: what you saw on the smear or in the cells.",
    )

    CELL_PREFIX = "cell_"
    CELL_CHOICES = [("", "Keep"), *Label.choices]

    def relabels(self) -> list[dict]:
        """Per-cell labels chosen in the grid (fields cell_<image id>); blank ones are kept as they are."""
        cells = []
        for name, value in self.data.items():
            if name.startswith(self.CELL_PREFIX) and value:
                image_id = name.removeprefix(self.CELL_PREFIX)
                if image_id.isdigit():
                    cells.append({"image": int(image_id), "label": value})
        return cells
