"""The sandbox speaks Kolmeya's protocol and posts callbacks to a real receiving server."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from contact_center.providers.kolmeya.sandbox import SandboxServer, format_brl
from contact_center.providers.kolmeya.webhooks import parse_reply, parse_statuses

from .conftest import CallbackReceiver

STATUS_PATH = "/kolmeya/webhook/status?token=s3cret"
ONE_MESSAGE = {"phone": "5511900000001", "message": "Oi", "reference": "cc-1"}
REPLY_PATH = "/kolmeya/webhook/reply?token=s3cret"

# The seed's /sms/store curl bodies, byte for byte (they call the segment "segment_id").
SEED_STORE_BODIES = [
    '{\n    "messages": [\n      {\n        "phone": "5548991910234",\n        "message": "Teste de SMS",\n'
    '        "reference": "msg_001"\n      }\n    ],\n    "segment_id": 109\n  }',
    '{\n    "messages": [{"phone":"5548999999999","message":"Teste"}],\n    "segment_id": 109\n  }',
    '{\n    "messages": [\n      {"phone":"5548999999999","message":"Teste API","reference":"test001"}\n'
    '    ],\n    "segment_id": 109\n  }',
]


def api(sandbox: SandboxServer, path: str, body: Any = None, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or sandbox.token}", "Accept": "application/json"}
    return httpx.post(sandbox.base_url + path, json=body or {}, headers=headers, timeout=5)


def store(sandbox: SandboxServer, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    response = api(sandbox, "/sms/store", {"messages": messages, "tenant_segment_id": 109, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def codes(received: list[Any]) -> list[int]:
    return [status.code for r in received for status in parse_statuses(r.body)]


def test_status_callbacks_progress_1_2_3(sandbox: SandboxServer, receiver: CallbackReceiver) -> None:
    answer = store(sandbox, [ONE_MESSAGE], webhook_url=receiver.url(STATUS_PATH))
    received = receiver.wait_for(3)

    assert codes(received) == [1, 2, 3]
    assert all(r.path == STATUS_PATH for r in received)
    assert received[-1].body == {
        "id": answer["valids"][0]["id"],
        "reference": "cc-1",
        "status": "entregue",
        "status_code": 3,
        "phone": "5511900000001",
    }
    [message] = sandbox.ledger()["messages"]
    assert [h["code"] for h in message["history"]] == [1, 2, 3]


def test_final_code_per_phone_and_fallback_webhook_url(
    sandbox_factory: Any, receiver: CallbackReceiver
) -> None:
    sandbox = sandbox_factory(
        status_webhook_url=receiver.url(STATUS_PATH),
        status_progression=[2],
        final_codes={"5511900000002": 5, "5511900000003": 6},
        default_final_code=4,
    )
    store(
        sandbox,
        [
            {"phone": "5511900000001", "message": "Oi", "reference": "a"},
            {"phone": "5511900000002", "message": "Oi", "reference": "b"},
            {"phone": "5511900000003", "message": "Oi", "reference": "c"},
        ],
    )
    statuses = [s for r in receiver.wait_for(6) for s in parse_statuses(r.body)]
    finals = {s.reference: s.state for s in statuses if s.final}
    assert finals == {"a": "failed", "b": "rejected", "c": "expired"}


def test_duplicate_callbacks(sandbox: SandboxServer, receiver: CallbackReceiver) -> None:
    sandbox.configure(duplicate_callback_probability=1.0)
    store(sandbox, [ONE_MESSAGE], webhook_url=receiver.url(STATUS_PATH))
    received = receiver.wait_for(6)
    assert codes(received) == [1, 1, 2, 2, 3, 3]
    external_ids = {s.external_id for r in received for s in parse_statuses(r.body)}
    assert len(external_ids) == 3  # a replay is recognisable


def test_out_of_order_callbacks(sandbox: SandboxServer, receiver: CallbackReceiver) -> None:
    sandbox.configure(out_of_order_probability=1.0)
    store(sandbox, [ONE_MESSAGE], webhook_url=receiver.url(STATUS_PATH))
    received = receiver.wait_for(3)
    assert codes(received) == [1, 3, 2]
    # The sandbox's own truth still moved in order (tests/messaging shows we end up delivered).
    assert [h["code"] for h in sandbox.ledger()["messages"][0]["history"]] == [1, 2, 3]


def test_batch_callbacks(sandbox: SandboxServer, receiver: CallbackReceiver) -> None:
    sandbox.configure(callback_shape="batch")
    answer = store(
        sandbox,
        [
            {"phone": "5511900000001", "message": "Oi", "reference": "x1"},
            {"phone": "5511900000002", "message": "Oi", "reference": "x2"},
        ],
        webhook_url=receiver.url(STATUS_PATH),
        reference="lote-9",
    )
    received = receiver.wait_for(3)
    assert [(r.body["id"], r.body["reference"], len(r.body["messages"])) for r in received] == [
        (answer["id"], "lote-9", 2)
    ] * 3
    assert codes(received) == [1, 1, 2, 2, 3, 3]


def test_undelivered_callbacks_are_retried(sandbox: SandboxServer, receiver: CallbackReceiver) -> None:
    sandbox.configure(status_progression=[])
    receiver.fail_first = 2
    store(sandbox, [ONE_MESSAGE], webhook_url=receiver.url(STATUS_PATH))
    assert codes(receiver.wait_for(1)) == [3]
    attempts = [(c["attempt"], c.get("status_code")) for c in sandbox.ledger()["callbacks"]]
    assert attempts == [(1, 500), (2, 500), (3, 200)]


@pytest.mark.parametrize("shape", ["flat", "nested"])
def test_reply_is_posted_to_our_webhook(
    sandbox: SandboxServer, receiver: CallbackReceiver, shape: str
) -> None:
    sandbox.configure(reply_webhook_url=receiver.url(REPLY_PATH), reply_shape=shape)
    answer = store(sandbox, [{"phone": "5511900000001", "message": "Confirma a visita?", "reference": "v-1"}])
    result = sandbox.reply("5511900000001", "Confirmo")
    assert result["delivery"]["status_code"] == 200

    [call] = [r for r in receiver.wait_for(1) if r.path == REPLY_PATH]
    reply = parse_reply(call.body)
    assert (reply.phone, reply.text, reply.in_reply_to_reference) == ("5511900000001", "Confirmo", "v-1")
    assert reply.received_at is not None
    if shape == "nested":
        assert reply.in_reply_to_provider_id == answer["valids"][0]["id"]
        assert reply.external_id == call.body["reply"]["id"]
    else:
        assert set(call.body) == {"phone", "message", "reference", "data"}

    listed = api(sandbox, "/sms/replys", {"period": 1}).json()
    assert listed["total"] == 1 and parse_reply(listed["data"][0]).text == "Confirmo"


def test_reply_needs_a_sent_message_and_a_url(sandbox: SandboxServer) -> None:
    unknown = httpx.post(sandbox.control_url + "/reply", json={"phone": "5511900000001", "text": "Oi"})
    assert unknown.status_code == 409 and "send one first" in unknown.json()["error"]
    store(sandbox, [{"phone": "5511900000001", "message": "Oi", "reference": "n"}])
    no_url = httpx.post(sandbox.control_url + "/reply", json={"phone": "5511900000001", "text": "Oi"})
    assert no_url.status_code == 409 and "reply_webhook_url" in no_url.json()["error"]


def test_a_reply_can_be_dated_in_the_past(sandbox: SandboxServer, receiver: CallbackReceiver) -> None:
    """`ago_seconds` says when the customer replied: the listing and the webhook carry that time,
    and /sms/replys leaves it out of a period that ends before it."""
    sandbox.configure(reply_webhook_url=receiver.url(REPLY_PATH))
    store(sandbox, [{"phone": "5511900000001", "message": "Confirma a visita?", "reference": "v-1"}])
    sandbox.reply("5511900000001", "Confirmo", ago_seconds=2 * 3600)

    [call] = [r for r in receiver.wait_for(1) if r.path == REPLY_PATH]
    assert abs(time.time() - 2 * 3600 - parse_reply(call.body).received_at.timestamp()) < 60
    assert api(sandbox, "/sms/replys", {"period": 1}).json()["total"] == 0
    [listed] = api(sandbox, "/sms/replys", {"period": 3}).json()["data"]
    assert abs(time.time() - 2 * 3600 - parse_reply(listed).received_at.timestamp()) < 60

    for bad in (-1, "ontem", True):
        refused = httpx.post(sandbox.control_url + "/reply",
                             json={"phone": "5511900000001", "text": "Oi", "ago_seconds": bad})
        assert refused.status_code == 400 and "ago_seconds" in refused.json()["error"]


def test_every_endpoint_is_post_only(sandbox: SandboxServer) -> None:
    headers = {"Authorization": f"Bearer {sandbox.token}"}
    response = httpx.get(sandbox.base_url + "/sms/balance", headers=headers)
    assert (response.status_code, response.json()) == (404, {"errors": ["Not found."]})
    assert response.headers["X-RateLimit-Limit"] == "1000"
    assert api(sandbox, "/sms/nothing-here").status_code == 404


def test_bad_token(sandbox: SandboxServer) -> None:
    response = api(sandbox, "/sms/balance", token="wrong")
    assert (response.status_code, response.json()) == (401, {"errors": ["Unauthenticated."]})
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert header in response.headers


def test_rate_limit(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(rate_limit=2)
    remaining = [api(sandbox, "/sms/balance").headers["X-RateLimit-Remaining"] for _ in range(2)]
    limited = api(sandbox, "/sms/balance")
    assert remaining == ["1", "0"]
    assert (limited.status_code, limited.json()) == (429, {"errors": ["Too Many Requests"]})
    assert int(limited.headers["Retry-After"]) >= 1


def test_store_answer_quirks_and_ledger(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(
        blacklist=["5511900000003"], not_disturb=["5511900000004"], price_per_segment="0.10"
    )
    long_text = "x" * 200  # two SMS parts
    answer = store(
        sandbox,
        [
            {"phone": "5511900000001", "message": long_text, "reference": "ok"},
            {"phone": "+5511900000002", "message": "Oi", "reference": "plus"},
            {"phone": "5511900000003", "message": "Oi", "reference": "bl"},
            {"phone": 5511900000004, "message": "Oi", "reference": "np"},
            {"phone": "55 11 90000-0001", "message": long_text, "reference": "dup"},
        ],
    )
    assert answer["valids"] == [{"id": answer["valids"][0]["id"], "phone": 11900000001, "reference": "ok"}]
    assert [(i["reference"], i["error"]) for i in answer["invalids"]] == [("plus", "Número inválido")]
    assert answer["blacklist"] == [{"phone": 5511900000003, "reference": "bl"}]
    assert answer["not_disturb"] == [{"phone": 5511900000004, "reference": "np"}]
    assert answer["duplicates"] == [{"phone": 5511900000001, "reference": "dup"}]

    ledger = sandbox.ledger()
    [message] = ledger["messages"]
    assert (message["reference"], message["segments"], message["cost"]) == ("ok", 2, "0.20")
    assert ledger["balance"] == "R$9.396,64"
    assert ledger["requests"][0]["id"] == answer["id"]


@pytest.mark.parametrize("count", [0, 1001])
def test_store_needs_1_to_1000_messages(sandbox: SandboxServer, count: int) -> None:
    messages = [{"phone": "5511900000001", "message": f"m{i}"} for i in range(count)]
    response = api(sandbox, "/sms/store", {"messages": messages})
    assert response.status_code == 422
    assert set(response.json()) == {"message", "errors"} and "messages" in response.json()["errors"]


@pytest.mark.parametrize("body", SEED_STORE_BODIES, ids=["msg_001", "teste", "test001"])
def test_seed_store_requests_are_accepted(sandbox: SandboxServer, body: str) -> None:
    response = httpx.post(
        sandbox.base_url + "/sms/store",
        content=body.encode(),
        headers={"Authorization": f"Bearer {sandbox.token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200 and len(response.json()["valids"]) == 1


def test_config_errors_are_explained(sandbox: SandboxServer) -> None:
    unknown = httpx.post(sandbox.control_url + "/config", json={"no_such_setting": 1})
    assert unknown.status_code == 400 and "no_such_setting" in unknown.json()["error"]
    bad_final = httpx.post(sandbox.control_url + "/config", json={"final_codes": {"5511900000001": 2}})
    assert bad_final.status_code == 400 and "final codes" in bad_final.json()["error"]
    bad_failure = httpx.post(sandbox.control_url + "/config", json={"fail_next": [418]})
    assert bad_failure.status_code == 400 and "fail_next" in bad_failure.json()["error"]


def test_inspection_endpoints_mask_the_webhook_secret(sandbox: SandboxServer, receiver: CallbackReceiver) -> None:
    # Our callback URLs carry the channel's secret; anyone who can reach the sandbox reads these.
    sandbox.configure(reply_webhook_url=receiver.url(REPLY_PATH), status_webhook_url=receiver.url(STATUS_PATH),
                      status_delay_seconds=0)
    store(sandbox, [ONE_MESSAGE])
    receiver.wait_for(3)
    replied = sandbox.reply("5511900000001", "Oi")
    config, ledger = httpx.get(sandbox.control_url + "/config").text, httpx.get(sandbox.control_url + "/ledger").text
    for text in (config, ledger, str(replied)):
        assert "s3cret" not in text
        assert "token=***" in text
    # The callbacks themselves still went to the real URL.
    assert all(r.path.endswith("token=s3cret") for r in receiver.received)


def test_reset(sandbox: SandboxServer) -> None:
    sandbox.configure(balance="5", blacklist=["5511900000009"])
    store(sandbox, [{"phone": "5511900000001", "message": "Oi"}])
    sandbox.configure(fail_next=[500, 500])
    sandbox.reset()
    config = httpx.get(sandbox.control_url + "/config").json()
    assert (config["balance"], config["blacklist"], config["fail_next"]) == ("R$9.396,84", [], [])
    assert sandbox.ledger()["messages"] == []


def test_helpers() -> None:
    assert format_brl(Decimal("9396.84")) == "R$9.396,84"
    assert format_brl(Decimal("-5")) == "-R$5,00"
