"""The dashboard's two forms: which day to show, and a staff member setting a space's count."""

from django import forms


class DayForm(forms.Form):
    day = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        label="Day",
    )


class SetCountForm(forms.Form):
    """A reset, as an operator says it: "at this local time there were this many people"."""

    timestamp = forms.DateTimeField(
        label="At (the space's local time)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}, format="%Y-%m-%dT%H:%M:%S"),
    )
    count = forms.IntegerField(label="People there", widget=forms.NumberInput(attrs={"inputmode": "numeric"}))
