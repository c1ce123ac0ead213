"""Broker URLs are read in one place (engine.mqtt): scheme, port, TLS, credentials."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from engine.mqtt import Broker, Defaults, parse_broker
from engine.settings import Settings


@pytest.mark.parametrize(("url", "host", "port", "tls"), [
    ("mqtt://broker", "broker", 1883, False),
    ("mqtts://broker", "broker", 8883, True),
    ("MQTTS://broker:9883", "broker", 9883, True),
    ("mqtt://10.0.0.5:1884/", "10.0.0.5", 1884, False),
    ("mqtts://[::1]", "::1", 8883, True),
])
def test_scheme_gives_tls_and_default_port(url: str, host: str, port: int, tls: bool) -> None:
    b = parse_broker(url)
    assert (b.host, b.port, b.tls) == (host, port, tls)


def test_credentials_are_decoded_and_never_shown() -> None:
    b = parse_broker("mqtts://op%201:p%40ss%3Aword@broker?client_id=pad7&ca_file=/etc/ca.pem")
    assert (b.username, b.password, b.client_id, b.ca_file) == (
        "op 1", "p@ss:word", "pad7", "/etc/ca.pem")
    assert "p@ss" not in repr(b) and b.url == "mqtts://broker:8883"
    with pytest.raises(ValueError) as err:
        parse_broker("http://user:hunter2@broker")
    assert "hunter2" not in str(err.value)
    assert str(err.value) == ("broker URL must look like mqtt://host:1883 or "
                              "mqtts://host:8883, got 'broker'")


def test_settings_fill_what_the_url_leaves_out() -> None:
    s = Settings(mqtt_url="mqtts://broker", mqtt_username="site", mqtt_password=SecretStr("x"),
                 mqtt_ca_file="/etc/campo/ca.pem", mqtt_tls_insecure=False)
    assert Broker.from_settings(s) == Broker("broker", 8883, True, "site", "x", None,
                                             "/etc/campo/ca.pem", False)
    # the URL wins over the settings, keyword arguments over both
    b = parse_broker("mqtts://me:pw@broker?insecure=yes",
                     defaults=Defaults(username="site", password="x", insecure=False))
    assert (b.username, b.password, b.insecure) == ("me", "pw", True)
    assert parse_broker(b, username="other", client_id="c1").username == "other"
    # TLS options on a clear-text URL are a mistake, not silently dropped
    assert Broker.from_settings(Settings(mqtt_url="mqtt://b", mqtt_ca_file="/x")).ca_file is None
    with pytest.raises(ValueError, match="ca_file and insecure need mqtts://"):
        parse_broker("mqtt://b?ca_file=/x")


@pytest.mark.parametrize(("url", "message"), [
    ("mqtt://b?qos=1", "unknown parameter 'qos' (expected one of ca_file, insecure, client_id)"),
    ("mqtts://b?insecure=maybe", "insecure='maybe' is not true or false"),
    ("mqtt://b:99999", "Port out of range"),
    ("mqtt://b/topic", "a broker URL has no path ('/topic')"),
])
def test_mistakes_are_named(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_broker(url)


def test_no_broker_configured() -> None:
    with pytest.raises(ValueError, match="CAMPO_MQTT_URL is empty"):
        Broker.from_settings(Settings(mqtt_url=""))


def test_paho_is_loaded_only_by_processes_that_connect() -> None:
    import subprocess
    import sys

    code = ("import sys, engine.api.app, engine.bus.events, engine.alarms.mqtt, engine.mqtt; "
            "before = 'paho' in sys.modules; engine.mqtt.Connection; "
            "print(before, 'paho' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["False", "True"], done.stderr
