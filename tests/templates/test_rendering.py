from __future__ import annotations

import pytest

from contact_center.templates.rendering import CompanyScope, ContactScope, TemplateError, UserScope, render

CONTACT = ContactScope(name="Maria Souza", first_name="Maria", phone="", mobile="+5548991910234",
                       email="maria@example.com", document="529.982.247-25", notes="")
USER = UserScope(name="Ana Lima", username="ana")
COMPANY = CompanyScope(name="Crédito Exemplo", phone="(11) 4000-0000")


def draw(source: str) -> str:
    return render(source, contact=CONTACT, user=USER, company=COMPANY)


def test_renders_the_seed_style_template():
    text = draw("Olá {{ contact.first_name }},\nsua parcela vence amanhã. Valor: {{ 1234.5|brl }}\n"
                "Dúvidas? {{ company.phone }}\n{{ user.name }}")
    assert text == ("Olá Maria,\nsua parcela vence amanhã. Valor: R$ 1.234,50\n"
                    "Dúvidas? (11) 4000-0000\nAna Lima")


def test_unknown_attribute_names_the_variable_and_line():
    with pytest.raises(TemplateError) as caught:
        draw("Olá {{ contact.name }}\nValor: {{ contact.proxima_parcela }}")
    message = str(caught.value)
    assert message.startswith("line 2: unknown variable 'contact.proxima_parcela'")
    assert "contact.first_name" in message  # tells the operator what exists


def test_unknown_top_level_variable():
    with pytest.raises(TemplateError, match=r"line 1: unknown variable 'partner'"):
        draw("Olá {{ partner.name }}")


def test_syntax_error_has_the_line():
    with pytest.raises(TemplateError, match=r"line 3: syntax error"):
        draw("a\nb\n{{ contact.name ")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ contact.__class__.__init__.__globals__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ user.__dict__ }}",
        "{% set x = [].append(1) %}",
    ],
)
def test_python_internals_are_refused(source):
    with pytest.raises(TemplateError) as caught:
        draw(source)
    assert "refused" in str(caught.value) or "unknown variable" in str(caught.value)


def test_brl_of_non_number_is_an_error():
    with pytest.raises(TemplateError, match="brl: 'abc' is not a number"):
        draw("{{ 'abc'|brl }}")
