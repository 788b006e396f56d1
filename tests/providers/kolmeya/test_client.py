"""KolmeyaClient against the sandbox, over real HTTP."""

from __future__ import annotations

import logging
import socket
import time
from decimal import Decimal
from typing import Any

import pytest

from contact_center.providers.kolmeya.client import (
    UNKNOWN_REASON,
    KolmeyaClient,
    OutgoingMessage,
    parse_balance,
    parse_send_response,
    to_kolmeya_phone,
)
from contact_center.providers.kolmeya.errors import (
    KolmeyaAuthError,
    KolmeyaConnectionError,
    KolmeyaNotFound,
    KolmeyaPermissionError,
    KolmeyaRateLimited,
    KolmeyaResponseError,
    KolmeyaServerError,
    KolmeyaTimeout,
    KolmeyaValidationError,
)
from contact_center.providers.kolmeya.sandbox import SandboxServer

BLOCKED = "5511900000008"
DO_NOT_DISTURB = "5511900000009"


def client_for(sandbox: SandboxServer, token: str | None = None, **kwargs: Any) -> KolmeyaClient:
    return KolmeyaClient(token or sandbox.token, base_url=sandbox.base_url, **kwargs)


def test_send_gives_every_message_a_definite_outcome(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(blacklist=[BLOCKED], not_disturb=[DO_NOT_DISTURB])
    with client_for(sandbox) as client:
        client.send([OutgoingMessage("earlier", "+5511900000004", "Lembrete de pagamento")])
        result = client.send(
            [
                OutgoingMessage("ok-e164", "+55 11 90000-0001", "Oi"),
                OutgoingMessage("ok-national", "(11) 90000-0002", "Oi"),
                OutgoingMessage("too-short", "123", "Oi"),
                OutgoingMessage("opted-out", BLOCKED, "Oi"),
                OutgoingMessage("nao-perturbe", DO_NOT_DISTURB, "Oi"),
                OutgoingMessage("resent", "5511900000004", "Lembrete de pagamento"),
            ],
            webhook_url="http://127.0.0.1:9/kolmeya/webhook/status?token=s3cret",
            reference="campaign-7",
        )

    assert result.request_id
    states = {ref: (o.accepted, o.state) for ref, o in result.outcomes.items()}
    assert states == {
        "ok-e164": (True, "sent"),
        "ok-national": (True, "sent"),
        "too-short": (False, "rejected"),
        "opted-out": (False, "blocked"),
        "nao-perturbe": (False, "blocked"),
        "resent": (False, "rejected"),
    }
    assert list(result.outcomes) == list(states)  # the order we sent
    assert result.outcomes["ok-e164"].provider_message_id
    assert result.outcomes["too-short"].reason == "Número inválido"
    assert "blacklist" in str(result.outcomes["opted-out"].reason)
    assert "Não Perturbe" in result.outcomes["nao-perturbe"].reason.text("pt-BR")  # words of ours, said per reader
    assert "duplicate" in str(result.outcomes["resent"].reason)
    assert result.outcomes["resent"].duplicate and not result.outcomes["ok-e164"].duplicate

    sent = {m["reference"]: m for m in sandbox.ledger()["messages"]}
    assert sent["ok-e164"]["phone"] == "5511900000001"  # digits with 55, no '+'
    assert sent["ok-national"]["phone"] == "5511900000002"
    assert sent["ok-e164"]["id"] == result.outcomes["ok-e164"].provider_message_id


def test_raw_answer_is_logged_at_debug(sandbox: SandboxServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="contact_center.providers.kolmeya.client"):
        with client_for(sandbox) as client:
            client.send([OutgoingMessage("dbg-1", "5511900000001", "Oi")])
    assert '"reference":"dbg-1"' in caplog.text and '"valids"' in caplog.text
    assert sandbox.token not in caplog.text


@pytest.mark.parametrize("token", ["sandbox-token", "Bearer sandbox-token", "  bearer   sandbox-token \n"])
def test_token_with_or_without_bearer(sandbox: SandboxServer, token: str) -> None:
    with client_for(sandbox, token) as client:
        assert client.balance() == Decimal("9396.84")


def test_bad_token_raises_auth_error_without_the_token(sandbox: SandboxServer) -> None:
    secret = "tok-2f9a7c1e5b-do-not-log"
    with client_for(sandbox, f"Bearer {secret}") as client, pytest.raises(KolmeyaAuthError) as caught:
        client.balance()
    error = caught.value
    assert error.status_code == 401 and not error.retryable
    assert "channel settings" in str(error)
    assert secret not in str(error) and secret not in repr(error.args)


def test_rate_limit_warning_then_429_with_retry_after(
    sandbox_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = sandbox_factory(rate_limit=20, rate_limit_window_seconds=30)
    with client_for(sandbox) as client:
        for _ in range(18):
            client.balance()
        assert client.last_rate_limit.limit == 20
        assert client.last_rate_limit.remaining == 2  # exactly 10%: no warning yet
        assert "rate limit almost used up" not in caplog.text

        with caplog.at_level(logging.WARNING):
            client.balance()
        assert "rate limit almost used up: 1 of 20 requests left" in caplog.text

        client.balance()
        with pytest.raises(KolmeyaRateLimited) as caught:
            client.balance()
    assert caught.value.retryable
    assert 0 < caught.value.retry_after_seconds <= 31  # whole seconds, rounded up
    assert client.last_rate_limit.remaining == 0


def test_forced_429_reports_retry_after(sandbox: SandboxServer) -> None:
    sandbox.configure(fail_next=[429])
    with client_for(sandbox) as client:
        with pytest.raises(KolmeyaRateLimited) as caught:
            client.balance()
        assert caught.value.retry_after_seconds is not None
        assert client.balance() == Decimal("9396.84")  # only the next call failed


@pytest.mark.parametrize(
    ("forced", "error_type", "retryable", "phrase"),
    [
        (500, KolmeyaServerError, True, "retry later"),
        (503, KolmeyaServerError, True, "HTTP 503"),
        (403, KolmeyaPermissionError, False, "allow-list"),
        (401, KolmeyaAuthError, False, "token"),
    ],
)
def test_http_errors_are_typed(
    sandbox: SandboxServer, forced: int, error_type: type, retryable: bool, phrase: str
) -> None:
    sandbox.configure(fail_next=[forced])
    with client_for(sandbox) as client, pytest.raises(error_type) as caught:
        client.balance()
    assert caught.value.retryable is retryable
    assert phrase in str(caught.value)
    # A 5xx may come after the work was done; a 401 or 403 refused it.
    assert caught.value.outcome_unknown is (forced >= 500)


def test_an_unreadable_answer_leaves_the_outcome_unknown(sandbox: SandboxServer) -> None:
    sandbox.configure(fail_next=["html"])
    with client_for(sandbox) as client, pytest.raises(KolmeyaResponseError) as caught:
        client.send([OutgoingMessage("u1", "5511900000001", "Oi")])
    assert caught.value.outcome_unknown and "not JSON" in str(caught.value)


def test_timeout(sandbox: SandboxServer) -> None:
    sandbox.configure(fail_next=["timeout"], timeout_sleep_seconds=0.6)
    with client_for(sandbox, timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(KolmeyaTimeout) as caught:
            client.balance()
    assert time.monotonic() - started < 0.5
    assert caught.value.retryable and "0.2s" in str(caught.value)
    assert caught.value.outcome_unknown  # the sandbox did the work and answered too late


def test_connection_refused() -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with KolmeyaClient("t0k3n", base_url=f"http://127.0.0.1:{port}/api/v1", timeout=2) as client:
        with pytest.raises(KolmeyaConnectionError) as caught:
            client.balance()
    assert caught.value.retryable and "t0k3n" not in str(caught.value)
    assert not caught.value.outcome_unknown  # refused: nothing reached anyone


def test_wrong_base_url_is_not_found(sandbox: SandboxServer) -> None:
    with KolmeyaClient(sandbox.token, base_url=sandbox.base_url.replace("v1", "v2")) as client:
        with pytest.raises(KolmeyaNotFound) as caught:
            client.balance()
    assert "/api/v1" in str(caught.value)


def test_validation_error_lists_the_fields(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client, pytest.raises(KolmeyaValidationError) as caught:
        client.send([OutgoingMessage("r1", "5511900000001", "Oi")], segment_id=999)
    assert caught.value.field_errors == {"tenant_segment_id": ["The selected tenant segment id is invalid."]}
    assert "tenant_segment_id: The selected tenant segment id is invalid." in str(caught.value)


def test_send_refuses_bad_batches_before_calling(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client:
        with pytest.raises(ValueError, match="1 to 1000"):
            client.send([])
        with pytest.raises(ValueError, match="1 to 1000"):
            client.send([OutgoingMessage(f"r{i}", "5511900000001", "Oi") for i in range(1001)])
        with pytest.raises(ValueError, match="reference"):
            client.send(
                [OutgoingMessage("same", "5511900000001", "a"), OutgoingMessage("same", "5511900000002", "b")]
            )
    assert sandbox.ledger()["api_calls"] == []


def test_balance_follows_the_sandbox(sandbox: SandboxServer) -> None:
    sandbox.configure(balance="1000000", price_per_segment="0.10")
    with client_for(sandbox) as client:
        assert client.balance() == Decimal("1000000.00")
        client.send([OutgoingMessage("r1", "5511900000001", "Oi")])
        assert client.balance() == Decimal("999999.90")
    assert sandbox.ledger()["balance"] == "R$999.999,90"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("R$9.396,84", Decimal("9396.84")),
        ("1500.50", Decimal("1500.50")),
        ("R$ 0,00", Decimal("0.00")),
        ("R$1.000.000,00", Decimal("1000000.00")),
        ("-R$5,00", Decimal("-5.00")),
        ("R$ -5,00", Decimal("-5.00")),
        ("R$\u00a0120,5", Decimal("120.5")),
        ("9396,84", Decimal("9396.84")),
        (1500, Decimal("1500")),
        (1500.5, Decimal("1500.5")),
        (0, Decimal("0")),
    ],
)
def test_parse_balance(raw: Any, expected: Decimal) -> None:
    value = parse_balance(raw)
    assert value == expected and isinstance(value, Decimal)


@pytest.mark.parametrize("raw", ["", None, "abc", "1.2.3,4,5", "R$", "R$ 9,396.84", True, float("nan"), [1]])
def test_parse_balance_refuses_what_it_cannot_read(raw: Any) -> None:
    with pytest.raises(KolmeyaResponseError) as caught:
        parse_balance(raw)
    assert repr(raw) in str(caught.value)


def test_replies_pagination(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(replies_per_page=2)
    with client_for(sandbox) as client:
        client.send([OutgoingMessage("cc-1", "5511900000001", "Posso ajudar?")])
        for n in range(5):
            sandbox.reply("5511900000001", f"resposta {n}", deliver=False)

        pages = [client.replies(period_hours=1)]
        while pages[-1].has_next:
            pages.append(client.replies(period_hours=1, page=pages[-1].current_page + 1))

    assert [len(p.replies) for p in pages] == [2, 2, 1]
    assert pages[0].total == 5 and pages[0].last_page == 3
    texts = [r.text for p in pages for r in p.replies]
    assert sorted(texts) == [f"resposta {n}" for n in range(5)]
    first = pages[0].replies[0]
    assert first.in_reply_to_reference == "cc-1" and first.phone == "5511900000001"
    assert first.received_at.utcoffset().total_seconds() == 0
    assert abs(time.time() - first.received_at.timestamp()) < 60


def test_replies_period_is_checked(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client, pytest.raises(ValueError, match="1 to 168"):
        client.replies(period_hours=200)


def test_status_queries(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client:
        result = client.send(
            [OutgoingMessage("s1", "5511900000001", "Oi"), OutgoingMessage("s2", "5511900000002", "Oi")]
        )
        time.sleep(0.2)  # the progression takes three short steps
        statuses = client.request_status(result.request_id)
        one = client.message_status(result.outcomes["s2"].provider_message_id)
        with pytest.raises(KolmeyaNotFound):
            client.message_status("no-such-message")
    assert {(s.reference, s.state, s.final) for s in statuses} == {
        ("s1", "delivered", True),
        ("s2", "delivered", True),
    }
    assert one.reference == "s2" and one.code == 3


def test_a_request_is_found_by_the_reference_it_was_sent_with(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client:
        client.send([OutgoingMessage("f1", "5511900000001", "Oi"), OutgoingMessage("f2", "123", "Oi")],
                    reference="cc-batch-found")
        found = client.find_request("cc-batch-found")
        missing = client.find_request("cc-batch-never-sent")
    # Only what Kolmeya took is listed (the invalid number is not), with our references.
    assert [(status.reference, status.provider_message_id is not None) for status in found] == [("f1", True)]
    assert missing is None
    [store_call] = [call for call in sandbox.ledger()["requests"] if call["reference"] == "cc-batch-found"]
    assert len(store_call["message_ids"]) == 1


def test_segments_apis_and_blacklist(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client:
        assert (109, "CORPORATIVO") in {(s.id, s.name) for s in client.segments()}
        assert [(a.id, a.name) for a in client.apis()] == [(47, "Kolmeya")]

        client.blacklist_add(["+55 11 90000-0003"])
        assert sandbox.ledger()["blacklist"] == ["5511900000003"]
        blocked = client.send([OutgoingMessage("b1", "5511900000003", "Oi")])
        client.blacklist_remove(["11900000003"])
        allowed = client.send([OutgoingMessage("b2", "5511900000003", "Oi")])
    assert blocked.outcomes["b1"].state == "blocked"
    assert allowed.outcomes["b2"].state == "sent"


class TestParseSendResponse:
    """The answer-matching rules, on answers the sandbox never gives."""

    sent = [OutgoingMessage("a", "5511900000001", "x"), OutgoingMessage("b", "5511900000002", "y")]

    def test_unmatchable_entries_are_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        answer = {
            "id": "req-1",
            "valids": [
                {"id": "m-1", "phone": 11900000001, "reference": "a"},
                {"id": "m-9", "phone": 11900000009},  # no reference
            ],
            "invalids": [{"phone": "5511900000002", "reference": "zzz", "reason": "Número inválido"}],
        }
        result = parse_send_response(answer, self.sent)
        assert result.outcomes["a"].provider_message_id == "m-1"
        assert result.outcomes["b"].state == "unknown"
        assert result.outcomes["b"].reason == UNKNOWN_REASON
        assert "without a reference" in caplog.text and "m-9" in caplog.text
        assert "'zzz'" in caplog.text

    def test_invalid_reason_from_reason_key(self) -> None:
        answer = {
            "id": "req-2",
            "invalids": [{"phone": "123", "reference": "a", "reason": "Número inválido"}],
        }
        assert parse_send_response(answer, self.sent).outcomes["a"].reason == "Número inválido"

    def test_not_an_object(self) -> None:
        with pytest.raises(KolmeyaResponseError, match="may or may not have been accepted"):
            parse_send_response(["unexpected"], self.sent)


def test_non_json_answer_is_a_response_error(sandbox: SandboxServer) -> None:
    sandbox.configure(fail_next=["html"])  # e.g. a proxy's maintenance page
    with client_for(sandbox) as client, pytest.raises(KolmeyaResponseError, match="not JSON: <html>"):
        client.balance()


@pytest.mark.parametrize(
    "written,sent",
    [
        ("+55 (48) 99191-0234", "5548991910234"),
        ("48991910234", "5548991910234"),
        ("4833334444", "554833334444"),
        ("5548991910234", "5548991910234"),
        ("+1 415 555 0100", "14155550100"),  # a foreign number keeps its country, never gains a 55
        ("554891910234", "5548991910234"),  # the 12-digit form goes out with the ninth digit
    ],
)
def test_phones_go_out_with_their_own_country_code(written, sent):
    assert to_kolmeya_phone(written) == sent
