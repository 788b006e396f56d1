"""The template budget, at the rendering level: every hostile template stops at its limit, fast;
legitimate templates render as before; the limits are the configured ones."""

from __future__ import annotations

import sys
import time

import pytest

from contact_center.settings import Settings
from contact_center.templates.budget import TemplateBudget
from contact_center.templates.rendering import (
    CompanyScope, ContactScope, TemplateBudgetError, TemplateError, UserScope, compile_template, render,
    render_compiled,
)
from tests.templates.hostile import CPU_SECONDS, HOSTILE_PARAMS

CONTACT = ContactScope(name="Maria Souza", first_name="Maria", phone="", mobile="+5548991910234",
                       email="maria@example.com", document="529.982.247-25", notes="")
USER = UserScope(name="Ana Lima", username="ana")
COMPANY = CompanyScope(name="Crédito Exemplo", phone="(11) 4000-0000")
BUDGET = TemplateBudget(cpu_seconds=CPU_SECONDS, max_output_bytes=65536)


def draw(source: str, budget: TemplateBudget = BUDGET, contact: ContactScope = CONTACT) -> str:
    return render(source, contact=contact, user=USER, company=COMPANY, budget=budget)


@pytest.mark.parametrize("source,limit,words", HOSTILE_PARAMS)
def test_hostile_template_stops_at_its_limit_quickly(source, limit, words):
    started = time.perf_counter()
    with pytest.raises(TemplateBudgetError) as caught:
        draw(source)
    elapsed = time.perf_counter() - started
    assert caught.value.limit == limit
    assert words in str(caught.value) and "refused" in str(caught.value)
    assert elapsed < 0.7, f"took {elapsed:.2f} s"


def test_compiling_evaluates_nothing():
    # Jinja folds constant expressions while compiling: these used to be computed before any render.
    for source in ("{{ 'x'|center(1000000000) }}", "{{ 9**(9**7) }}", '{{ "%1000000000s"|format("x") }}'):
        started = time.perf_counter()
        compiled = compile_template(source, BUDGET)
        assert time.perf_counter() - started < 0.2, source
        with pytest.raises(TemplateBudgetError):
            render_compiled(compiled, contact=CONTACT, user=USER, company=COMPANY, budget=BUDGET)


def test_the_refusal_names_the_line():
    with pytest.raises(TemplateBudgetError) as caught:
        draw("Olá {{ contact.first_name }}\n\n{{ 'x' * 10**8 }}")
    assert str(caught.value).startswith("line 3: refused: 'x' * 100000000")


def test_limits_come_from_the_budget():
    small = TemplateBudget(cpu_seconds=0.05, max_output_bytes=100)
    assert draw("{{ 'x' * 100 }}", small) == "x" * 100
    with pytest.raises(TemplateBudgetError, match="size limit of 100 bytes"):
        draw("{{ 'x' * 101 }}", small)
    with pytest.raises(TemplateBudgetError, match="size limit of 100 bytes") as caught:
        draw("{% for i in range(30) %}abcd{% endfor %}", small)  # many small pieces
    assert caught.value.limit == "max_output_bytes"
    with pytest.raises(TemplateBudgetError, match=r"CPU time limit of 0\.05 s"):
        draw("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", small)


def test_the_size_limit_counts_utf8_bytes():
    small = TemplateBudget(cpu_seconds=1, max_output_bytes=100)
    assert draw("{{ 'é' * 50 }}", small) == "é" * 50  # 100 bytes
    with pytest.raises(TemplateBudgetError, match="the message would be larger than the size limit of 100 bytes"):
        draw("{{ 'é' * 40 }}{{ 'é' * 11 }}", small)  # 51 characters, 102 bytes


def test_the_default_budget_is_the_settings_default():
    settings = Settings(_env_file=None)
    assert TemplateBudget.default() == TemplateBudget.from_settings(settings) == TemplateBudget(1.0, 65536)
    configured = Settings(_env_file=None, template_cpu_seconds=0.3, template_max_output_bytes=2000)
    assert TemplateBudget.from_settings(configured) == TemplateBudget(0.3, 2000)


def test_the_cpu_limit_is_cpu_time_of_the_render():
    started = time.perf_counter()
    with pytest.raises(TemplateBudgetError):
        draw("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}")
    assert CPU_SECONDS <= time.perf_counter() - started < CPU_SECONDS + 0.4


def test_a_previous_tracer_is_restored():
    calls = []

    def tracer(frame, event, arg):
        calls.append(event)

    sys.settrace(tracer)
    try:
        draw("{% for i in range(3) %}{{ i }}{% endfor %}")
        with pytest.raises(TemplateBudgetError):
            draw("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}")
        restored = sys.gettrace()
    finally:
        sys.settrace(None)
    assert restored is tracer


def test_each_render_has_the_whole_budget():
    compiled = compile_template("{% for i in range(10000) %}{% if i % 2 %}{% endif %}{% endfor %}ok", BUDGET)
    started = time.process_time()
    for _ in range(20):  # each well within the budget; twenty together are not
        assert render_compiled(compiled, contact=CONTACT, user=USER, company=COMPANY, budget=BUDGET) == "ok"
    assert time.process_time() - started > CPU_SECONDS


@pytest.mark.parametrize("source", [
    "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
    "{{ " + "[" * 300 + "1" + "]" * 300 + " }}",
    "{% if 1 %}" * 150 + "x" + "{% endif %}" * 150,
    "{{ " + "1+" * 2400 + "1 }}",
    "{{ x" + "|upper" * 800 + " }}",
])
def test_deep_nesting_is_a_clear_template_error(source):
    with pytest.raises(TemplateError, match="the template is nested too deeply"):
        draw(source)


def test_source_length_is_capped_everywhere():
    with pytest.raises(TemplateError, match="the template has 5,001 characters; the limit is 5,000"):
        compile_template("x" * 5001)
    with pytest.raises(TemplateError, match="a number written in the template is too long"):
        compile_template("{{ " + "9" * 4400 + " }}")


@pytest.mark.parametrize("source,fragment", [
    ("{{ (1).to_bytes(10**9, 'big') }}", "'to_bytes' is not available on int values"),
    ("{{ 'x'.encode() }}", "'encode' is not available on str values"),
    ("{{ dict.fromkeys(range(10), 1) }}", "fromkeys"),
    ("{% set ns = namespace() %}{% set ns.me = ns %}", "a namespace cannot be kept"),
    ("{{ ('a' * 600)|trim('b' * 600) }}", "at most 100"),
])
def test_methods_outside_the_allowlist_are_refused(source, fragment):
    with pytest.raises(TemplateError, match="refused|no attribute") as caught:
        draw(source)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("source,expected", [
    ("Olá {{ contact.first_name }}, {{ 1234.5|brl }}", "Olá Maria, R$ 1.234,50"),
    ("{% for w in 'a b c'.split() %}{{ w|upper }}{% if not loop.last %}-{% endif %}{% endfor %}", "A-B-C"),
    ("{% macro saudacao(nome) %}Oi {{ nome }}{% endmacro %}{{ saudacao(contact.first_name) }}!", "Oi Maria!"),
    ("{% set ns = namespace(total=0) %}{% for v in [10, 20.5] %}{% set ns.total = ns.total + v %}{% endfor %}"
     "{{ ns.total|brl }}", "R$ 30,50"),
    ("{{ '%s tem %d parcelas'|format(contact.first_name, 3) }}", "Maria tem 3 parcelas"),
    ("{{ '{} / {:>5}'.format(contact.first_name, 42) }}", "Maria /    42"),
    ("{{ ['a', 'b', 'c']|join(', ') }} {{ 'x' * 3 }} {{ 2 ** 10 }}", "a, b, c xxx 1024"),
    ("{{ contact.name|replace('Souza', 'S.') }} {{ contact.name|center(15)|length }}", "Maria S. 15"),
    ("{% set s %}{{ contact.first_name }}!{% endset %}{{ s * 2 }}", "Maria!Maria!"),
    ("{{ (range(5)|list)[1:3] }} {{ {'a': 1}['a'] }} {{ (1, 2)|sum }}", "[1, 2] 1 3"),
    ("{{ contact.email|wordwrap(5) }}", "maria\n@exam\nple.c\nom"),
    ("{% filter upper %}oi {{ contact.first_name }}{% endfilter %}", "OI MARIA"),
    ("{{ contact.first_name ~ ' ' ~ 3 }} {{ 10 // 3 }} {{ 7 % 4 }} {{ 1.5 * 2 }}", "Maria 3 3 3 3.0"),
])
def test_legitimate_templates_still_work(source, expected):
    assert draw(source) == expected


def test_long_contact_data_is_refused_only_where_it_passes_the_budget():
    long_notes = ContactScope(**{**CONTACT.__dict__, "notes": "x" * 3000})
    source = ("{% for a in contact.notes %}{% for b in contact.notes %}{% endfor %}{% endfor %}"
              "Oi {{ contact.first_name }}")
    assert draw(source) == "Oi Maria"
    with pytest.raises(TemplateBudgetError, match="CPU time limit"):
        draw(source, contact=long_notes)


@pytest.mark.parametrize("source,english,portuguese", [
    ("{{ 9**(9**8) }}", "refused: 9 ** 43046721 would have more than a million billion digits",
     "recusado: 9 ** 43046721 teria mais de um milhão de bilhões de dígitos"),
    ("{{ range(10)|batch(10**9)|list }}", "refused: batch(1,000,000,000) would have 1,000,000,000 items",
     "recusado: batch(1,000,000,000) teria 1.000.000.000 itens"),
    ("{{ ('x' * 60000)|wordwrap(1, wrapstring='y' * 1000) }}", "refused: wordwrap with a text of 1,000 characters",
     "recusado: wordwrap com um texto de 1.000 caracteres"),
])
def test_a_refusal_reads_whole_in_each_language(source, english, portuguese):
    with pytest.raises(TemplateBudgetError) as caught:
        draw(source)
    assert caught.value.text(None).startswith(f"line 1: {english}")
    assert caught.value.text("pt-BR").startswith(f"linha 1: {portuguese}")
