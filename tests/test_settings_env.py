"""Reading the environment: a value that does not parse stops start-up and names the variable."""

from __future__ import annotations

import ipaddress

import pytest
from django.core.exceptions import ImproperlyConfigured

from malaria_site.env import env_bool, env_float, env_int, env_list, env_networks, env_str

pytestmark = pytest.mark.pure


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on", " On "])
def test_true_words(monkeypatch, value):
    monkeypatch.setenv("SOME_SWITCH", value)
    assert env_bool("SOME_SWITCH") is True


@pytest.mark.parametrize("value", ["0", "false", "False", "no", "off"])
def test_false_words(monkeypatch, value):
    monkeypatch.setenv("SOME_SWITCH", value)
    assert env_bool("SOME_SWITCH", True) is False


@pytest.mark.parametrize("value", ["ture", "2", "enabled", "y"])
def test_a_typo_in_a_boolean_stops_start_up(monkeypatch, value):
    monkeypatch.setenv("DJANGO_SECURE_COOKIES", value)
    with pytest.raises(ImproperlyConfigured, match=f"^DJANGO_SECURE_COOKIES='{value}' is not a boolean"):
        env_bool("DJANGO_SECURE_COOKIES", True)


def test_unset_and_empty_mean_the_default(monkeypatch):
    monkeypatch.delenv("SOME_SWITCH", raising=False)
    assert env_bool("SOME_SWITCH", True) is True
    monkeypatch.setenv("SOME_SWITCH", "  ")
    assert env_bool("SOME_SWITCH", True) is True
    monkeypatch.setenv("SOME_NUMBER", "")
    assert env_int("SOME_NUMBER", 7) == 7
    assert env_float("SOME_NUMBER", 0.5) == 0.5
    assert env_str("SOME_NUMBER", "default") == "default"


def test_integers(monkeypatch):
    monkeypatch.setenv("CLASSIFY_CHUNK_SIZE", " 250 ")
    assert env_int("CLASSIFY_CHUNK_SIZE", 100) == 250


@pytest.mark.parametrize("value", ["ten", "1.5", "10k", "0x10"])
def test_a_bad_integer_stops_start_up(monkeypatch, value):
    monkeypatch.setenv("CLASSIFY_CHUNK_SIZE", value)
    with pytest.raises(ImproperlyConfigured, match=f"^CLASSIFY_CHUNK_SIZE='{value}' is not a whole number$"):
        env_int("CLASSIFY_CHUNK_SIZE", 100)


def test_an_integer_below_its_minimum_stops_start_up(monkeypatch):
    monkeypatch.setenv("CELERY_TASK_TIME_LIMIT", "20")
    with pytest.raises(ImproperlyConfigured, match="^CELERY_TASK_TIME_LIMIT=20 is below its minimum of 31$"):
        env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=31)


@pytest.mark.parametrize("value", ["soon", "nan", "inf"])
def test_a_bad_number_stops_start_up(monkeypatch, value):
    monkeypatch.setenv("SWEEP_INTERVAL_SECONDS", value)
    with pytest.raises(ImproperlyConfigured, match=f"^SWEEP_INTERVAL_SECONDS='{value}' is not a number$"):
        env_float("SWEEP_INTERVAL_SECONDS", 30.0)


def test_numbers(monkeypatch):
    monkeypatch.setenv("SWEEP_INTERVAL_SECONDS", "2.5")
    assert env_float("SWEEP_INTERVAL_SECONDS", 30.0, minimum=0.1) == 2.5
    monkeypatch.setenv("SWEEP_INTERVAL_SECONDS", "0")
    with pytest.raises(ImproperlyConfigured, match="^SWEEP_INTERVAL_SECONDS=0 is below its minimum of 0.1$"):
        env_float("SWEEP_INTERVAL_SECONDS", 30.0, minimum=0.1)


def test_lists_drop_blanks(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", " malaria.example.org, ,127.0.0.1,")
    assert env_list("DJANGO_ALLOWED_HOSTS") == ["malaria.example.org", "127.0.0.1"]
    monkeypatch.delenv("DJANGO_ALLOWED_HOSTS")
    assert env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1") == ["localhost", "127.0.0.1"]


def test_networks(monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", " 10.20.0.0/24, ,2001:db8::/32,192.0.2.7")
    assert env_networks("WEBHOOK_ALLOWED_NETWORKS") == [
        ipaddress.ip_network("10.20.0.0/24"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("192.0.2.7/32"),
    ]
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "10.20.0.1/24")  # host bits set: a typo, not a network
    with pytest.raises(ImproperlyConfigured, match="WEBHOOK_ALLOWED_NETWORKS"):
        env_networks("WEBHOOK_ALLOWED_NETWORKS")
    monkeypatch.delenv("WEBHOOK_ALLOWED_NETWORKS")
    assert env_networks("WEBHOOK_ALLOWED_NETWORKS") == []
