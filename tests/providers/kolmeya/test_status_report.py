"""Kolmeya's status report (/sms/reports/statuses): the client's checks and parsing, the sandbox
serving it from its ledger, and the provider reading a window whole however many calls it takes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contact_center.providers.base import OutgoingMessage
from contact_center.providers.kolmeya.client import KolmeyaClient, parse_status_report, report_time
from contact_center.providers.kolmeya.errors import KolmeyaResponseError, KolmeyaValidationError
from contact_center.providers.kolmeya.provider import KolmeyaProvider, KolmeyaSettings

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _now():
    """NOW is each test's own moment, not the collection's: a long suite reaches these tests much later."""
    global NOW
    NOW = datetime.now(UTC)


def send(client: KolmeyaClient, count: int, first: int = 1, reference: str = "cc-batch") -> str:
    messages = [OutgoingMessage(f"{reference}-{n}", f"551190000{n:04d}", f"Fatura {n}") for n in
                range(first, first + count)]
    return client.send(messages, reference=reference).request_id


def wait_final(sandbox, count: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        codes = [m["status_code"] for m in sandbox.ledger()["messages"]]
        if len(codes) == count and all(code >= 3 for code in codes):
            return
        time.sleep(0.02)
    raise AssertionError(f"the sandbox did not reach final states: {codes}")


def report_call(sandbox, **body) -> httpx.Response:
    return httpx.post(f"{sandbox.base_url}/sms/reports/statuses", json=body,
                      headers={"Authorization": f"Bearer {sandbox.token}"})


def test_the_sandbox_reports_the_ledger_in_the_documented_shape(sandbox):
    sandbox.configure(final_codes={"5511900000002": 4})
    client = KolmeyaClient(sandbox.token, base_url=sandbox.base_url)
    request_id = send(client, 2)
    wait_final(sandbox, 2)

    rows = client.reports_statuses(NOW - timedelta(minutes=5), NOW + timedelta(minutes=1))
    assert [(r.phone, r.status, r.code, r.state, r.job, r.lote) for r in rows] == [
        ("5511900000001", "entregue", 3, "delivered", request_id, "cc-batch"),
        ("5511900000002", "não entregue", 4, "failed", request_id, "cc-batch"),
    ]
    assert all(abs(r.sent_at - NOW) < timedelta(minutes=2) and r.sent_at.second == 0 for r in rows)

    listed = report_call(sandbox, start_at=report_time(NOW - timedelta(minutes=5)),
                         end_at=report_time(NOW + timedelta(days=1)), limit=1).json()
    assert len(listed["messages"]) == 1  # the limit is honoured
    assert set(listed["messages"][0]) == {"telefone", "nome", "cpf", "mensagem", "status", "enviada_em", "lote", "job",
                                          "centro_custo", "api", "broker", "produto"}
    too_long = report_call(sandbox, start_at=report_time(NOW - timedelta(days=7, minutes=1)), end_at=report_time(NOW))
    assert too_long.json()["errors"]["end_at"] == ["The period must not be longer than 7 days."]


def test_the_client_checks_the_window_before_asking(sandbox):
    client = KolmeyaClient(sandbox.token, base_url=sandbox.base_url)
    with pytest.raises(ValueError, match="at most 7 days"):
        client.reports_statuses(NOW - timedelta(days=7, minutes=1), NOW)
    with pytest.raises(ValueError, match="before start_at"):
        client.reports_statuses(NOW, NOW - timedelta(minutes=1))
    with pytest.raises(ValueError, match="limit must be 1 to 30,000"):
        client.reports_statuses(NOW - timedelta(hours=1), NOW, limit=30_001)
    with pytest.raises(ValueError, match="aware"):
        client.reports_statuses(datetime(2025, 11, 15), datetime(2025, 11, 16))
    assert sandbox.ledger()["api_calls"] == []


def test_the_sandbox_refuses_a_window_it_cannot_read(sandbox):
    response = httpx.post(f"{sandbox.base_url}/sms/reports/statuses",
                          headers={"Authorization": f"Bearer {sandbox.token}"},
                          json={"start_at": "15/11/2025", "end_at": "2025-11-15 10:00", "limit": 0})
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"start_at", "limit"}


@pytest.mark.parametrize("mode", ["garbage", "html"])
def test_an_unreadable_report_is_a_clear_error(sandbox, mode):
    sandbox.configure(fail_next=[mode])
    client = KolmeyaClient(sandbox.token, base_url=sandbox.base_url)
    with pytest.raises(KolmeyaResponseError, match="/sms/reports/statuses") as raised:
        client.reports_statuses(NOW - timedelta(hours=1), NOW)
    assert ("not {\"messages\": [...]}" if mode == "garbage" else "not JSON") in str(raised.value)


@pytest.mark.parametrize("answer, problem", [
    ({"messages": ["x"]}, "messages[0] is not an object"),
    ({"messages": [{"telefone": "5511900000001"}]}, "messages[0] has no readable 'telefone' and 'status'"),
    ({"messages": [{"telefone": True, "status": "entregue"}]}, "messages[0] has no readable"),
    ([], "is not {\"messages\": [...]}"),
])
def test_one_unreadable_row_refuses_the_whole_report(answer, problem):
    with pytest.raises(KolmeyaResponseError, match="Nothing of") as raised:
        parse_status_report(answer)
    assert problem in str(raised.value)


def test_rows_are_read_tolerantly_where_tolerance_is_safe():
    [known, unknown] = parse_status_report({"messages": [
        {"telefone": 5548991910234, "status": "Não  Entregue", "enviada_em": "15/11/2025 14:30", "job": 77, "lote": ""},
        {"telefone": "(48) 99191-0234", "status": "em análise", "enviada_em": "ontem"},
    ]})
    assert (known.phone, known.code, known.state, known.job, known.lote) == ("5548991910234", 4, "failed", "77", None)
    assert known.sent_at == datetime(2025, 11, 15, 17, 30, tzinfo=UTC)  # Brazil's 14:30
    assert (unknown.phone, unknown.code, unknown.state, unknown.sent_at) == ("48991910234", None, None, None)


def read_whole(sandbox, limit: int):
    provider = KolmeyaProvider(sandbox.token, KolmeyaSettings(base_url=sandbox.base_url))
    provider.report_limit = limit
    try:
        return provider.status_report(NOW - timedelta(hours=2), NOW + timedelta(minutes=1))
    finally:
        provider.close()


def report_calls(sandbox) -> int:
    return sum(1 for c in sandbox.ledger()["api_calls"] if c["path"].endswith("/sms/reports/statuses"))


def test_a_full_page_splits_the_window_and_nothing_is_missed_or_counted_twice(sandbox):
    """The halves share their boundary minute, whose rows are kept from the later one only: right
    whether Kolmeya's end_at takes in its own minute or not."""
    client = KolmeyaClient(sandbox.token, base_url=sandbox.base_url)
    send(client, 7)
    wait_final(sandbox, 7)
    rows = read_whole(sandbox, limit=7)  # a full page: there may be more
    assert report_calls(sandbox) > 1
    assert sorted(r.phone for r in rows) == [f"551190000{n:04d}" for n in range(1, 8)]
    assert {r.state for r in rows} == {"delivered"}


def test_a_minute_holding_more_than_a_page_is_read_as_far_as_it_goes_and_said(sandbox, caplog):
    client = KolmeyaClient(sandbox.token, base_url=sandbox.base_url)
    send(client, 5)
    wait_final(sandbox, 5)
    rows = read_whole(sandbox, limit=3)
    assert len(rows) == 3 and len({r.phone for r in rows}) == 3
    assert "more than 3 messages sent in the minute" in caplog.text


def test_the_report_honours_the_segment(sandbox):
    client = KolmeyaClient(sandbox.token, base_url=sandbox.base_url)
    send(client, 1)
    rows = client.reports_statuses(NOW - timedelta(minutes=5), NOW + timedelta(minutes=1), segment_id=110)
    assert rows == []
    with pytest.raises(KolmeyaValidationError):
        client._post("/sms/reports/statuses", {"start_at": "x"})
