"""Errors of the WhatsApp Cloud API and what each one asks us to do.

Meta reports the same error codes synchronously (the send's answer), in a `failed` status and at
the top of a webhook's `value.errors[]`. `classify` turns a code into an action once, for all of
them: whether to retry, wait, stop the whole channel or give up, and the reason an operator reads
(in their language: translations/). Build on the code (and `error_data.details`), never on Meta's titles, which change.
Messages never contain the access token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contact_center.providers.base import ProviderError
from contact_center.translations import Words

ActionKind = Literal["fail", "retry", "retry_recipient", "wait", "pause_channel", "throttle_channel", "opt_out",
                     "pause_campaign"]

DAY_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class ErrorAction:
    kind: ActionKind
    reason: Words  # what an operator reads on the message, in their language
    max_attempts: int | None = None  # for "retry": None leaves it to the job runner's own limit
    min_delay_seconds: float | None = None  # no attempt sooner than this

    @property
    def retryable(self) -> bool:
        return self.kind in ("retry", "retry_recipient", "wait", "throttle_channel")

    @property
    def stops_channel(self) -> bool:
        return self.kind in ("pause_channel", "throttle_channel")


def _fail(reason: Words) -> ErrorAction:
    return ErrorAction("fail", reason)


_TABLE: dict[int, ErrorAction] = {
    131047: _fail(Words("24-hour window closed: the customer has not written for more than 24 hours; send an approved "
                        "template")),
    131026: _fail(Words("not delivered: the number does not use WhatsApp, has an old app or blocked the business")),
    130429: ErrorAction("throttle_channel", Words("the number's sends-per-second limit was reached: the channel "
                                                  "slows down and tries again")),
    131056: ErrorAction("retry_recipient", Words("too many messages in a row to this customer: tried again shortly, "
                                                 "for this customer only"), min_delay_seconds=6.0),
    131049: ErrorAction("wait", Words("held by WhatsApp to keep engagement healthy (marketing to this customer): "
                                      "tried again only after 24 hours"), min_delay_seconds=DAY_SECONDS),
    131048: ErrorAction("pause_campaign", Words("spam rate limit reached (the number's quality): the campaign was "
                                                "paused; review its content before resuming it")),
    131050: ErrorAction("opt_out", Words("the customer asked not to receive marketing messages: opt-out recorded")),
    132000: _fail(Words("template: the number of parameters does not match the approved template; fix the send or the "
                        "template before trying again")),
    132001: _fail(Words("the template does not exist in this language or is not approved yet: check its name and "
                        "language")),
    132005: _fail(Words("template: the text with its parameters is too long; fix the send or the template before "
                        "trying again")),
    132007: _fail(Words("template: the content breaks WhatsApp's policy; fix the send or the template before trying "
                        "again")),
    132008: _fail(Words("template: a parameter has an invalid format; fix the send or the template before trying "
                        "again")),
    132012: _fail(Words("template: the parameters' format does not match the approved template; fix the send or the "
                        "template before trying again")),
    132015: _fail(Words("template paused by WhatsApp for low quality: edit it or use another one")),
    132016: _fail(Words("template disabled by WhatsApp: create or use another template")),
    131051: _fail(Words("message type not supported by WhatsApp")),
    131052: ErrorAction("retry", Words("could not download the media: tried again shortly"), max_attempts=3),
    131053: ErrorAction("retry", Words("could not upload the media to WhatsApp: tried again shortly"), max_attempts=3),
    131000: ErrorAction("retry", Words("unknown WhatsApp error: tried again shortly")),
    131016: ErrorAction("retry", Words("WhatsApp's service is unavailable right now: tried again shortly")),
    2: ErrorAction("retry", Words("WhatsApp's service is temporarily unavailable: tried again shortly")),
    135000: ErrorAction("retry", Words("generic WhatsApp error: tried again shortly")),
    4: ErrorAction("throttle_channel", Words("the app's call limit was reached: the channel waits before going on")),
    80007: ErrorAction("throttle_channel", Words("the WhatsApp account's call limit was reached: the channel waits "
                                                 "before going on")),
    190: ErrorAction("pause_channel", Words("the WhatsApp access token expired or is invalid")),
    0: ErrorAction("pause_channel", Words("WhatsApp authentication failed: check the token")),
    10: ErrorAction("pause_channel", Words("permission denied by WhatsApp: the token has no access to this number")),
    368: ErrorAction("pause_channel", Words("account temporarily blocked for breaking WhatsApp's policy")),
    131031: ErrorAction("pause_channel", Words("WhatsApp account blocked: talk to the administrator")),
    131042: ErrorAction("pause_channel", Words("payment problem on the WhatsApp account: check the payment method")),
}

_PERMISSION = ErrorAction("pause_channel", Words("WhatsApp permission missing or revoked for this number"))
_RATE_LIMITED = ErrorAction("throttle_channel", Words("WhatsApp asked to slow down (HTTP 429): the channel waits "
                                                      "before going on"))
_SERVER = ErrorAction("retry", Words("WhatsApp is down or not answering: tried again shortly"))
_AUTH = ErrorAction("pause_channel", Words("WhatsApp refused the authentication (HTTP 401): check the token"))
_UNKNOWN = _fail(Words("WhatsApp error"))


def classify(code: int | None, http_status: int | None) -> ErrorAction:
    """What to do about an error: by Meta's `code` first, by the HTTP status when the code is
    missing or unknown. Unknown 4xx codes fail (retrying a refused request only repeats it)."""
    if code is not None:
        if code in _TABLE:
            return _TABLE[code]
        if 200 <= code <= 299:
            return _PERMISSION
    if http_status == 401:
        return _AUTH
    if http_status == 429:
        return _RATE_LIMITED
    if http_status is not None and http_status >= 500:
        return _SERVER
    if code is not None:
        return ErrorAction("fail", Words("WhatsApp error {code}", code=code))
    return _UNKNOWN


def reason_for(code: int | None, details: str | None = None, http_status: int | None = None) -> Words:
    """The operator's reason for an error, with Meta's `error_data.details` when it says more
    (it names the parameter or the field at fault). Used for statuses' `errors[]` too."""
    reason = classify(code, http_status).reason
    details = (details or "").strip()
    return Words("{reason} (detail: {details})", reason=reason, details=details) if details else reason


class GraphError(ProviderError):
    """An error answer (or no usable answer) from the Graph API.

    `code`, `subcode`, `details`, `fbtrace_id` are Meta's; `action` is what to do about it
    (`classify`). `retryable` and `retry_after_seconds` follow the action, so the job runner can
    treat it like any other provider's error."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        details: str | None = None,
        http_status: int | None = None,
        fbtrace_id: str | None = None,
        path: str | None = None,
        retry_after_seconds: float | None = None,
        outcome_unknown: bool = False,
        action: ErrorAction | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.details = details
        self.http_status = http_status
        self.fbtrace_id = fbtrace_id
        self.path = path
        self.action = action or classify(code, http_status)
        self.retryable = self.action.retryable or outcome_unknown
        self.pauses_channel = self.action.kind == "pause_channel"  # a rate limit only backs off
        self.slows_channel = self.action.kind == "throttle_channel"
        self.pauses_campaign = self.action.kind == "pause_campaign"  # a message of no campaign just fails
        self.opts_out = "opt_out_marketing" if self.action.kind == "opt_out" else None
        self.retry_after_seconds = (
            retry_after_seconds if retry_after_seconds is not None else self.action.min_delay_seconds
        )
        self.outcome_unknown = outcome_unknown

    @property
    def reason(self) -> Words:
        reason = reason_for(self.code, self.details, self.http_status)
        return reason if self.code is None else Words("{reason} (code {code})", reason=reason, code=self.code)


class GraphTimeout(GraphError):
    """No answer in time; once the request was sent it may have been carried out."""


class GraphConnectionError(GraphError):
    """The Graph API could not be reached, or the connection broke mid-way."""


class GraphResponseError(GraphError):
    """An answer we cannot read (HTML from a proxy, a missing field): what became of a send is unknown."""
