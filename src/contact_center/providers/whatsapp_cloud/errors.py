"""Errors of the WhatsApp Cloud API and what each one asks us to do.

Meta reports the same error codes synchronously (the send's answer), in a `failed` status and at
the top of a webhook's `value.errors[]`. `classify` turns a code into an action once, for all of
them: whether to retry, wait, stop the whole channel or give up, and a reason in Portuguese for
the operator. Build on the code (and `error_data.details`), never on Meta's titles, which change.
Messages never contain the access token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contact_center.providers.base import ProviderError

ActionKind = Literal["fail", "retry", "retry_recipient", "wait", "pause_channel", "throttle_channel", "opt_out",
                     "pause_campaign"]

DAY_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class ErrorAction:
    kind: ActionKind
    reason_pt: str
    max_attempts: int | None = None  # for "retry": None leaves it to the job runner's own limit
    min_delay_seconds: float | None = None  # no attempt sooner than this

    @property
    def retryable(self) -> bool:
        return self.kind in ("retry", "retry_recipient", "wait", "throttle_channel")

    @property
    def stops_channel(self) -> bool:
        return self.kind in ("pause_channel", "throttle_channel")


_TEMPLATE_FIX = "; corrija o envio ou o modelo antes de tentar de novo"

_TABLE: dict[int, ErrorAction] = {
    131047: ErrorAction(
        "fail",
        "Janela de 24 horas fechada: o cliente não escreve há mais de 24 horas; envie um modelo aprovado",
    ),
    131026: ErrorAction(
        "fail",
        "Não entregue: o número não usa WhatsApp, tem um aplicativo antigo ou bloqueou a empresa",
    ),
    130429: ErrorAction(
        "throttle_channel",
        "Limite de envios por segundo do número atingido: o canal reduz o ritmo e tenta de novo",
    ),
    131056: ErrorAction(
        "retry_recipient",
        "Muitas mensagens seguidas para este cliente: nova tentativa em instantes, só para ele",
        min_delay_seconds=6.0,
    ),
    131049: ErrorAction(
        "wait",
        "Retida pelo WhatsApp para preservar o engajamento (marketing para este cliente): "
        "nova tentativa só depois de 24 horas",
        min_delay_seconds=DAY_SECONDS,
    ),
    131048: ErrorAction(
        "pause_campaign",
        "Limite de spam atingido (qualidade do número): a campanha foi pausada; revise o conteúdo antes de "
        "retomá-la",
    ),
    131050: ErrorAction(
        "opt_out",
        "O cliente pediu para não receber mensagens de marketing: descadastro registrado",
    ),
    132000: ErrorAction(
        "fail", "Modelo: a quantidade de parâmetros não confere com o modelo aprovado" + _TEMPLATE_FIX
    ),
    132001: ErrorAction(
        "fail", "Modelo inexistente neste idioma ou ainda não aprovado: confira o nome e o idioma"
    ),
    132005: ErrorAction("fail", "Modelo: o texto com os parâmetros ficou longo demais" + _TEMPLATE_FIX),
    132007: ErrorAction("fail", "Modelo: o conteúdo viola a política do WhatsApp" + _TEMPLATE_FIX),
    132008: ErrorAction("fail", "Modelo: um parâmetro tem formato inválido" + _TEMPLATE_FIX),
    132012: ErrorAction(
        "fail", "Modelo: o formato dos parâmetros não confere com o modelo aprovado" + _TEMPLATE_FIX
    ),
    132015: ErrorAction("fail", "Modelo pausado pelo WhatsApp por baixa qualidade: edite-o ou use outro"),
    132016: ErrorAction("fail", "Modelo desativado pelo WhatsApp: crie ou use outro modelo"),
    131051: ErrorAction("fail", "Tipo de mensagem não suportado pelo WhatsApp"),
    131052: ErrorAction(
        "retry", "Falha ao baixar a mídia recebida: nova tentativa em instantes", max_attempts=3
    ),
    131053: ErrorAction(
        "retry", "Falha ao enviar a mídia ao WhatsApp: nova tentativa em instantes", max_attempts=3
    ),
    131000: ErrorAction("retry", "Erro desconhecido no WhatsApp: nova tentativa em instantes"),
    131016: ErrorAction("retry", "Serviço do WhatsApp indisponível no momento: nova tentativa em instantes"),
    2: ErrorAction("retry", "Serviço do WhatsApp temporariamente indisponível: nova tentativa em instantes"),
    135000: ErrorAction("retry", "Erro genérico do WhatsApp: nova tentativa em instantes"),
    4: ErrorAction(
        "throttle_channel", "Limite de chamadas do aplicativo atingido: o canal espera antes de continuar"
    ),
    80007: ErrorAction(
        "throttle_channel", "Limite de chamadas da conta do WhatsApp atingido: o canal espera antes de continuar"
    ),
    190: ErrorAction("pause_channel", "Token de acesso do WhatsApp expirado ou inválido"),
    0: ErrorAction("pause_channel", "Falha de autenticação no WhatsApp: confira o token"),
    10: ErrorAction(
        "pause_channel", "Permissão negada pelo WhatsApp: o token não tem acesso a este número"
    ),
    368: ErrorAction(
        "pause_channel", "Conta bloqueada temporariamente por violação de política do WhatsApp"
    ),
    131031: ErrorAction("pause_channel", "Conta do WhatsApp bloqueada: fale com o administrador"),
    131042: ErrorAction(
        "pause_channel", "Problema de pagamento na conta do WhatsApp: confira a forma de pagamento"
    ),
}

_PERMISSION = ErrorAction(
    "pause_channel", "Permissão do WhatsApp ausente ou revogada para este número"
)
_RATE_LIMITED = ErrorAction(
    "throttle_channel", "WhatsApp pediu para reduzir o ritmo (HTTP 429): o canal espera antes de continuar"
)
_SERVER = ErrorAction("retry", "WhatsApp fora do ar ou sem resposta: nova tentativa em instantes")
_AUTH = ErrorAction("pause_channel", "WhatsApp recusou a autenticação (HTTP 401): confira o token")
_UNKNOWN = ErrorAction("fail", "Erro do WhatsApp")


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
        return ErrorAction("fail", f"Erro {code} do WhatsApp")
    return _UNKNOWN


def reason_for(code: int | None, details: str | None = None, http_status: int | None = None) -> str:
    """The operator's reason for an error, with Meta's `error_data.details` when it says more
    (it names the parameter or the field at fault). Used for statuses' `errors[]` too."""
    reason = classify(code, http_status).reason_pt
    details = (details or "").strip()
    return f"{reason} (detalhe: {details})" if details else reason


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
    def reason_pt(self) -> str:
        return reason_for(self.code, self.details, self.http_status)

    @property
    def reason(self) -> str:
        code = f" (código {self.code})" if self.code is not None else ""
        return f"{self.reason_pt}{code}"


class GraphTimeout(GraphError):
    """No answer in time; once the request was sent it may have been carried out."""


class GraphConnectionError(GraphError):
    """The Graph API could not be reached, or the connection broke mid-way."""


class GraphResponseError(GraphError):
    """An answer we cannot read (HTML from a proxy, a missing field): what became of a send is unknown."""
