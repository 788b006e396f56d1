"""WhatsApp templates: definitions read from Graph items, and components checked before sending."""

from __future__ import annotations

import copy

import pytest

from contact_center.errors import InvalidInput
from contact_center.providers.whatsapp_cloud.templates import (
    TemplateButton,
    TemplateValues,
    build_components,
    definition_from_graph,
)

# Shaped like items of GET /{waba_id}/message_templates; names, ids and texts are fictitious.
COBRANCA_LEMBRETE = {
    "id": "1029384756012345",
    "name": "cobranca_lembrete",
    "language": "pt_BR",
    "status": "APPROVED",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Fatura {{1}}", "example": {"header_text": ["março"]}},
        {
            "type": "BODY",
            "text": "Olá {{1}}, sua fatura de {{2}} vence em {{3}}. Valor: {{2}}.",
            "example": {"body_text": [["Ana", "R$ 89,90", "10/04"]]},
        },
        {"type": "FOOTER", "text": "Empresa Fictícia"},
        {
            "type": "BUTTONS",
            "buttons": [
                {
                    "type": "URL",
                    "text": "Ver fatura",
                    "url": "https://exemplo.com.br/fatura/{{1}}",
                    "example": ["https://exemplo.com.br/fatura/ABC123"],
                },
                {"type": "QUICK_REPLY", "text": "Já paguei"},
                {"type": "PHONE_NUMBER", "text": "Ligar", "phone_number": "+5511900000000"},
            ],
        },
    ],
}

BOAS_VINDAS = {
    "id": "5647382910564738",
    "name": "boas_vindas",
    "language": "pt_BR",
    "status": "APPROVED",
    "category": "MARKETING",
    "parameter_format": "NAMED",
    "components": [
        {
            "type": "HEADER",
            "format": "IMAGE",
            "example": {"header_handle": ["https://exemplo.com.br/banner.jpg"]},
        },
        {
            "type": "BODY",
            "text": "Bem-vinda, {{first_name}}! Seu cupom {{ coupon }} vale até {{valid_until}}.",
            "example": {
                "body_text_named_params": [
                    {"param_name": "first_name", "example": "Ana"},
                    {"param_name": "coupon", "example": "BEMVINDA10"},
                    {"param_name": "valid_until", "example": "30/04"},
                ]
            },
        },
        {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "text": "Copiar código", "example": "BEMVINDA10"}]},
    ],
}

CONTRATO_PDF = {
    "id": "1111222233334444",
    "name": "contrato_assinatura",
    "language": "pt_BR",
    "status": "APPROVED",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "DOCUMENT"},
        {"type": "BODY", "text": "Segue o contrato para assinatura."},
    ],
}


def graph(item: dict, **changes) -> dict:
    changed = copy.deepcopy(item)
    changed.update(changes)
    return changed


def refusal(definition, values: TemplateValues) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused:
        build_components(definition, values)
    return refused.value


COBRANCA_VALUES = TemplateValues(
    body=["Ana", "R$ 89,90", "10/04"], header=["março"], buttons={0: "ABC123"}
)
BOAS_VINDAS_VALUES = TemplateValues(
    body={"first_name": "Ana", "coupon": "BEMVINDA10", "valid_until": "30/04"},
    header_media={"type": "image", "id": "778899001122"},
    buttons={0: "BEMVINDA10"},
)


# --- Reading definitions -----------------------------------------------------------------------


def test_a_positional_definition_knows_its_parameters_header_and_buttons():
    definition = definition_from_graph(COBRANCA_LEMBRETE)

    assert definition.id == "1029384756012345"
    assert (definition.name, definition.language, definition.status, definition.category) == (
        "cobranca_lembrete", "pt_BR", "APPROVED", "UTILITY",
    )
    assert definition.parameter_format == "POSITIONAL"  # the default when Meta leaves it out
    assert definition.body_parameters == ("1", "2", "3")  # {{2}} twice is still one parameter
    assert (definition.header_format, definition.header_text, definition.header_parameters) == (
        "TEXT", "Fatura {{1}}", ("1",),
    )
    assert definition.footer_text == "Empresa Fictícia"
    assert definition.buttons == (
        TemplateButton(0, "URL", "Ver fatura", "https://exemplo.com.br/fatura/{{1}}", parameter="text"),
        TemplateButton(1, "QUICK_REPLY", "Já paguei", parameter="payload"),
        TemplateButton(2, "PHONE_NUMBER", "Ligar"),
    )
    assert definition.sendable and definition.unsupported == ()


def test_a_named_definition_keeps_names_in_order_of_appearance():
    definition = definition_from_graph(BOAS_VINDAS)

    assert definition.is_named
    assert definition.body_parameters == ("first_name", "coupon", "valid_until")
    assert definition.header_format == "IMAGE" and definition.header_media_type == "image"
    assert definition.buttons == (TemplateButton(0, "COPY_CODE", "Copiar código", parameter="coupon_code"),)


def test_preview_renders_the_body_with_the_values():
    assert definition_from_graph(COBRANCA_LEMBRETE).preview(COBRANCA_VALUES) == (
        "Olá Ana, sua fatura de R$ 89,90 vence em 10/04. Valor: R$ 89,90."
    )
    assert definition_from_graph(BOAS_VINDAS).preview(BOAS_VINDAS_VALUES) == (
        "Bem-vinda, Ana! Seu cupom BEMVINDA10 vale até 30/04."
    )


def test_preview_keeps_the_placeholder_of_a_value_not_given():
    assert definition_from_graph(BOAS_VINDAS).preview({"first_name": "Ana"}) == (
        "Bem-vinda, Ana! Seu cupom {{ coupon }} vale até {{valid_until}}."
    )


def test_a_static_url_button_takes_no_parameter():
    item = graph(
        CONTRATO_PDF,
        components=CONTRATO_PDF["components"]
        + [{"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Site", "url": "https://exemplo.com.br"}]}],
    )

    assert definition_from_graph(item).buttons == (TemplateButton(0, "URL", "Site", "https://exemplo.com.br"),)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"name": ""}, "a message template has no name"),
        ({"id": None}, 'template "cobranca_lembrete": id must be a non-empty string'),
        ({"language": None}, 'template "cobranca_lembrete": language must be a non-empty string'),
        ({"status": 3}, 'template "cobranca_lembrete": status must be a non-empty string'),
        ({"parameter_format": "MIXED"}, 'template "cobranca_lembrete": parameter_format must be POSITIONAL or NAMED'),
        ({"components": {}}, 'template "cobranca_lembrete": components must be a list'),
        ({"components": [{"type": "FOOTER", "text": "x"}]}, 'template "cobranca_lembrete": components has no BODY'),
        ({"components": [{"type": "BODY"}]}, 'template "cobranca_lembrete": components[0].text must be a non-empty string'),
        (
            {"components": [{"type": "BODY", "text": "a"}, {"type": "BODY", "text": "b"}]},
            'template "cobranca_lembrete": components[1] is a second BODY component',
        ),
        (
            {"components": [{"type": "BODY", "text": "Olá {{1}}, vence em {{3}}"}]},
            'template "cobranca_lembrete": components[0].text: positional parameters must be {{1}}..{{n}} '
            "without gaps, not {{1}}, {{3}}",
        ),
        (
            {"components": [{"type": "BODY", "text": "Olá {{nome}}"}]},
            'template "cobranca_lembrete": components[0].text: {{nome}} is not a positional parameter',
        ),
        (
            {"components": [{"type": "BODY", "text": "x"}, {"type": "HEADER", "format": "TEXT"}]},
            'template "cobranca_lembrete": components[1].text must be a non-empty string',
        ),
        (
            {"components": [{"type": "BODY", "text": "x"}, {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "a"}]}]},
            'template "cobranca_lembrete": components[1].buttons[0].url is missing on a URL button',
        ),
    ],
)
def test_a_malformed_item_raises_a_value_error_naming_the_template_and_field(changes, message):
    with pytest.raises(ValueError) as refused:
        definition_from_graph(graph(COBRANCA_LEMBRETE, **changes))

    assert str(refused.value).startswith(message)


def test_a_named_template_refuses_a_positional_placeholder():
    item = graph(BOAS_VINDAS, components=[{"type": "BODY", "text": "Olá {{1}}"}])

    with pytest.raises(ValueError, match=r'template "boas_vindas": components\[0\].text: \{\{1\}\} is not a named'):
        definition_from_graph(item)


def test_unknown_component_kinds_are_kept_and_refused_only_when_sending():
    item = graph(CONTRATO_PDF, components=CONTRATO_PDF["components"][1:] + [{"type": "CAROUSEL", "cards": []}])
    definition = definition_from_graph(item)  # the sync does not break on it

    assert definition.unsupported == ("CAROUSEL",)
    refused = refusal(definition, TemplateValues())
    assert refused.message == (
        'the template "contrato_assinatura" uses CAROUSEL, which cannot be sent from here yet'
    )
    assert refused.field == "template"


# --- Building components -----------------------------------------------------------------------


def test_builds_a_positional_template_with_header_text_and_url_button():
    assert build_components(definition_from_graph(COBRANCA_LEMBRETE), COBRANCA_VALUES) == [
        {"type": "header", "parameters": [{"type": "text", "text": "março"}]},
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Ana"},
                {"type": "text", "text": "R$ 89,90"},
                {"type": "text", "text": "10/04"},
            ],
        },
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "ABC123"}]},
    ]


def test_a_quick_reply_payload_is_sent_when_given():
    values = TemplateValues(
        body=COBRANCA_VALUES.body, header=["março"], buttons={0: "ABC123", 1: "pagou:fatura-ABC123"}
    )

    assert build_components(definition_from_graph(COBRANCA_LEMBRETE), values)[-1] == {
        "type": "button",
        "sub_type": "quick_reply",
        "index": "1",
        "parameters": [{"type": "payload", "payload": "pagou:fatura-ABC123"}],
    }


def test_builds_a_named_template_with_an_image_header_and_a_copy_code_button():
    assert build_components(definition_from_graph(BOAS_VINDAS), BOAS_VINDAS_VALUES) == [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "778899001122"}}]},
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                {"type": "text", "parameter_name": "coupon", "text": "BEMVINDA10"},
                {"type": "text", "parameter_name": "valid_until", "text": "30/04"},
            ],
        },
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "0",
            "parameters": [{"type": "coupon_code", "coupon_code": "BEMVINDA10"}],
        },
    ]


def test_builds_a_document_header_by_link_with_a_filename():
    values = TemplateValues(
        header_media={"type": "document", "link": "https://exemplo.com.br/contrato.pdf", "filename": "contrato.pdf"}
    )

    assert build_components(definition_from_graph(CONTRATO_PDF), values) == [
        {
            "type": "header",
            "parameters": [
                {"type": "document", "document": {"link": "https://exemplo.com.br/contrato.pdf", "filename": "contrato.pdf"}}
            ],
        }
    ]


def test_a_template_without_parameters_builds_no_components():
    item = graph(CONTRATO_PDF, components=[{"type": "BODY", "text": "Obrigado pelo contato."}])

    assert build_components(definition_from_graph(item), TemplateValues()) == []


def test_an_authentication_code_goes_in_the_body_and_the_otp_button():
    item = {
        "id": "9988776655443322",
        "name": "codigo_acesso",
        "language": "pt_BR",
        "status": "APPROVED",
        "category": "AUTHENTICATION",
        "components": [
            {"type": "BODY", "text": "*{{1}}* é seu código de verificação."},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copiar código"}]},
        ],
    }

    assert build_components(definition_from_graph(item), TemplateValues(body=["482913"], buttons={0: "482913"})) == [
        {"type": "body", "parameters": [{"type": "text", "text": "482913"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "482913"}]},
    ]


# --- Refusals: each names the parameter and its field ------------------------------------------


@pytest.mark.parametrize(
    "body, message, field",
    [
        (
            ["Ana", "R$ 89,90"],
            'the template "cobranca_lembrete" takes 3 body parameters ({{1}}…{{3}}); 2 were given',
            "parameters.body[2]",
        ),
        (
            ["Ana", "R$ 89,90", "10/04", "extra"],
            'the template "cobranca_lembrete" takes 3 body parameters ({{1}}…{{3}}); 4 were given',
            "parameters.body[3]",
        ),
        (
            ["Ana", "  ", "10/04"],
            'body parameter {{2}} of the template "cobranca_lembrete" is empty',
            "parameters.body[1]",
        ),
        (
            ["Ana", 89.9, "10/04"],
            'body parameter {{2}} of the template "cobranca_lembrete" must be text, not float',
            "parameters.body[1]",
        ),
        (
            ["Ana", "R$ 89,90", "x" * 1025],
            'body parameter {{3}} of the template "cobranca_lembrete" has 1025 characters; at most 1024 are allowed',
            "parameters.body[2]",
        ),
        (
            {"1": "Ana"},
            'the template "cobranca_lembrete" uses positional parameters; give the body parameters as a list '
            "in order ({{1}}…{{3}})",
            "parameters.body",
        ),
    ],
)
def test_positional_body_refusals(body, message, field):
    values = TemplateValues(body=body, header=["março"], buttons={0: "ABC123"})

    refused = refusal(definition_from_graph(COBRANCA_LEMBRETE), values)

    assert (refused.message, refused.field) == (message, field)


def test_a_body_parameter_of_exactly_1024_characters_is_accepted():
    values = TemplateValues(body=["Ana", "R$ 89,90", "x" * 1024], header=["março"], buttons={0: "ABC123"})

    assert build_components(definition_from_graph(COBRANCA_LEMBRETE), values)[1]["parameters"][2]["text"] == "x" * 1024


@pytest.mark.parametrize("value", ["Ana\nSilva", "Ana\tSilva", "Ana\r\nSilva", "Ana     Silva"])
def test_a_body_parameter_with_a_line_break_tab_or_five_spaces_is_refused(value):
    values = TemplateValues(body=[value, "R$ 89,90", "10/04"], header=["março"], buttons={0: "ABC123"})

    refused = refusal(definition_from_graph(COBRANCA_LEMBRETE), values)

    assert refused.message == (
        'body parameter {{1}} of the template "cobranca_lembrete" contains a line break, a tab or more than '
        "4 spaces in a row, which WhatsApp refuses in template parameters"
    )
    assert refused.field == "parameters.body[0]"


def test_four_spaces_in_a_row_are_still_accepted():
    values = TemplateValues(body=["Ana    Silva", "R$ 89,90", "10/04"], header=["março"], buttons={0: "ABC123"})

    assert build_components(definition_from_graph(COBRANCA_LEMBRETE), values)


def test_a_template_without_body_parameters_refuses_some():
    item = graph(CONTRATO_PDF, components=[{"type": "BODY", "text": "Obrigado pelo contato."}])

    refused = refusal(definition_from_graph(item), TemplateValues(body=["Ana"]))

    assert refused.message == 'the template "contrato_assinatura" takes no body parameters; 1 was given'
    assert refused.field == "parameters.body[0]"


@pytest.mark.parametrize(
    "body, message, field",
    [
        (
            {"nome": "Ana", "coupon": "BEMVINDA10", "valid_until": "30/04"},
            'the template "boas_vindas" has no parameter named "nome"; it takes: first_name, coupon, valid_until',
            "parameters.body.nome",
        ),
        (
            {"first_name": "Ana", "coupon": "BEMVINDA10"},
            'the template "boas_vindas" needs the body parameter "valid_until"; it was not given',
            "parameters.body.valid_until",
        ),
        (
            {"first_name": "", "coupon": "BEMVINDA10", "valid_until": "30/04"},
            'body parameter "first_name" of the template "boas_vindas" is empty',
            "parameters.body.first_name",
        ),
        (
            {"first_name": "Ana\nMaria", "coupon": "BEMVINDA10", "valid_until": "30/04"},
            'body parameter "first_name" of the template "boas_vindas" contains a line break, a tab or more than '
            "4 spaces in a row, which WhatsApp refuses in template parameters",
            "parameters.body.first_name",
        ),
        (
            ["Ana", "BEMVINDA10", "30/04"],
            'the template "boas_vindas" uses named parameters; give the body parameters by name '
            "(first_name, coupon, valid_until)",
            "parameters.body",
        ),
    ],
)
def test_named_body_refusals(body, message, field):
    values = TemplateValues(body=body, header_media=BOAS_VINDAS_VALUES.header_media, buttons={0: "BEMVINDA10"})

    refused = refusal(definition_from_graph(BOAS_VINDAS), values)

    assert (refused.message, refused.field) == (message, field)


@pytest.mark.parametrize(
    "header, header_media, message, field",
    [
        (
            [],
            None,
            'the template "cobranca_lembrete" takes 1 header parameter ({{1}}); 0 were given',
            "parameters.header[0]",
        ),
        (
            ["março", "abril"],
            None,
            'the template "cobranca_lembrete" takes 1 header parameter ({{1}}); 2 were given',
            "parameters.header[1]",
        ),
        (
            ["mar\nço"],
            None,
            'header parameter {{1}} of the template "cobranca_lembrete" contains a line break, a tab or more '
            "than 4 spaces in a row, which WhatsApp refuses in template parameters",
            "parameters.header[0]",
        ),
        (
            ["março"],
            {"type": "image", "id": "778899001122"},
            'the template "cobranca_lembrete" has no media header; remove the header media',
            "parameters.header_media",
        ),
    ],
)
def test_text_header_refusals(header, header_media, message, field):
    values = TemplateValues(body=COBRANCA_VALUES.body, header=header, header_media=header_media, buttons={0: "ABC123"})

    refused = refusal(definition_from_graph(COBRANCA_LEMBRETE), values)

    assert (refused.message, refused.field) == (message, field)


@pytest.mark.parametrize(
    "header_media, message, field",
    [
        (None, 'the template "boas_vindas" has an image header; the image was not given', "parameters.header_media"),
        (
            {"type": "video", "id": "778899001122"},
            "the template \"boas_vindas\" has an image header; the header media given is 'video'",
            "parameters.header_media.type",
        ),
        (
            {"type": "image"},
            'the header image of the template "boas_vindas" needs exactly one of id or link',
            "parameters.header_media",
        ),
        (
            {"type": "image", "id": "778899001122", "link": "https://exemplo.com.br/banner.jpg"},
            'the header image of the template "boas_vindas" needs exactly one of id or link',
            "parameters.header_media",
        ),
        (
            {"type": "image", "link": "file:///etc/passwd"},
            'the header image link of the template "boas_vindas" must be an http(s) URL',
            "parameters.header_media.link",
        ),
        (
            {"type": "image", "id": " "},
            'the header image id of the template "boas_vindas" is empty',
            "parameters.header_media.id",
        ),
        (
            {"type": "image", "id": "778899001122", "filename": "banner.jpg"},
            "the header media of the template \"boas_vindas\" has an unknown field 'filename'; it takes: id, link, type",
            "parameters.header_media.filename",
        ),
    ],
)
def test_media_header_refusals(header_media, message, field):
    values = TemplateValues(body=BOAS_VINDAS_VALUES.body, header_media=header_media, buttons={0: "BEMVINDA10"})

    refused = refusal(definition_from_graph(BOAS_VINDAS), values)

    assert (refused.message, refused.field) == (message, field)


def test_a_media_header_refuses_text_parameters():
    values = TemplateValues(
        body=BOAS_VINDAS_VALUES.body, header={"x": "y"}, header_media=BOAS_VINDAS_VALUES.header_media,
        buttons={0: "BEMVINDA10"},
    )

    refused = refusal(definition_from_graph(BOAS_VINDAS), values)

    assert refused.message == 'the template "boas_vindas" has an image header, which takes media, not text parameters'
    assert refused.field == "parameters.header"


@pytest.mark.parametrize(
    "buttons, message, field",
    [
        (
            {},
            'button 0 ("Ver fatura") of the template "cobranca_lembrete" needs its URL parameter '
            "(https://exemplo.com.br/fatura/{{1}}); it was not given",
            "parameters.buttons[0]",
        ),
        (
            {0: ""},
            'button 0 ("Ver fatura") of the template "cobranca_lembrete" is empty',
            "parameters.buttons[0]",
        ),
        (
            {0: "ABC123", 2: "+5511900000000"},
            'the template "cobranca_lembrete" button 2 ("Ligar") takes no parameter; buttons that take one: '
            '0 ("Ver fatura"), 1 ("Já paguei")',
            "parameters.buttons[2]",
        ),
        (
            {0: "ABC123", 5: "x"},
            'the template "cobranca_lembrete" has no button 5; buttons that take one: 0 ("Ver fatura"), 1 ("Já paguei")',
            "parameters.buttons[5]",
        ),
    ],
)
def test_button_refusals(buttons, message, field):
    values = TemplateValues(body=COBRANCA_VALUES.body, header=["março"], buttons=buttons)

    refused = refusal(definition_from_graph(COBRANCA_LEMBRETE), values)

    assert (refused.message, refused.field) == (message, field)


def test_a_coupon_code_over_15_characters_is_refused():
    values = TemplateValues(
        body=BOAS_VINDAS_VALUES.body, header_media=BOAS_VINDAS_VALUES.header_media, buttons={0: "BEMVINDA10EXTRA1"}
    )

    refused = refusal(definition_from_graph(BOAS_VINDAS), values)

    assert refused.message == (
        'button 0 ("Copiar código") of the template "boas_vindas" has a 16-character code; at most 15 are allowed'
    )
    assert refused.field == "parameters.buttons[0]"


@pytest.mark.parametrize(
    "status, reason",
    [
        ("PAUSED", "Meta paused it after negative feedback from customers"),
        ("DISABLED", "Meta disabled it after repeated negative feedback"),
        ("REJECTED", "Meta rejected it"),
        ("PENDING", "Meta is still reviewing it"),
        ("SOMETHING_NEW", "only APPROVED templates can be sent"),
    ],
)
def test_a_template_that_is_not_approved_is_refused_with_its_status(status, reason):
    definition = definition_from_graph(graph(COBRANCA_LEMBRETE, status=status))

    refused = refusal(definition, COBRANCA_VALUES)  # values that would otherwise be fine

    assert refused.message == f'the template "cobranca_lembrete" is {status} and cannot be sent: {reason}'
    assert refused.field == "template"
    assert not definition.sendable


def test_the_status_is_read_case_insensitively():
    assert definition_from_graph(graph(COBRANCA_LEMBRETE, status="approved")).sendable
