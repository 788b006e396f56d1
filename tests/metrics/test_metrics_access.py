"""The /metrics rule for addresses a test server cannot be reached from (another machine), and the
settings that feed it."""

from __future__ import annotations

import pytest

from contact_center.metrics.access import MetricsAccess
from contact_center.settings import SettingsError, load_settings


def access(**settings) -> MetricsAccess:
    return MetricsAccess(load_settings(_env_file=None, **settings))


def test_with_neither_setting_only_this_machine_is_answered():
    rule = access()
    assert rule.refusal("127.0.0.1", None) is None and rule.refusal("::1", None) is None
    assert rule.refusal("::ffff:127.0.0.1", None) is None  # IPv4 through an IPv6 socket
    refused = rule.refusal("10.1.2.3", None)
    assert (refused.status, refused.key, refused.values) == (403, "metrics.local_only", {"address": "10.1.2.3"})
    assert rule.refusal(None, None).status == 403  # no peer address (a Unix socket): not this machine for sure


def test_the_allow_list_takes_addresses_and_networks():
    rule = access(metrics_allow="10.0.0.0/8, 192.168.1.5 ,fd00::/8")
    assert rule.refusal("10.200.0.1", None) is None and rule.refusal("192.168.1.5", None) is None
    assert rule.refusal("fd00::1", None) is None
    assert rule.refusal("192.168.1.6", None).key == "metrics.address_refused"
    assert rule.refusal("127.0.0.1", None).status == 403  # listing addresses replaces the localhost default


def test_a_token_alone_opens_every_address_to_who_has_it():
    rule = access(metrics_token="a-long-scrape-token")
    assert rule.refusal("203.0.113.9", "Bearer a-long-scrape-token") is None
    assert rule.refusal("203.0.113.9", "bearer  a-long-scrape-token ") is None
    assert rule.refusal("203.0.113.9", None).key == "metrics.token_missing"
    assert rule.refusal("203.0.113.9", "Bearer a-long-scrape-tokeN").key == "metrics.token_wrong"


@pytest.mark.parametrize("allow, entry", [("10.0.0.300", "10.0.0.300"), ("10.0.0.0/8,intranet", "intranet"),
                                          ("10.0.0.0/33", "10.0.0.0/33")])
def test_a_bad_allow_list_stops_the_process_naming_the_entry(allow, entry):
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None, metrics_allow=allow)
    message = str(refused.value)
    assert message.startswith("CONTACT_CENTER_METRICS_ALLOW:") and repr(entry) in message and "CIDR" in message
