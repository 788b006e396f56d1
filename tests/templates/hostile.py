"""Templates built to stall or flood the server, with the limit each must be refused by.

The tests that use this table render with a CPU budget of CPU_SECONDS, so that even the templates
stopped by the clock are answered well under a second; the size limit is the default.
"""

from __future__ import annotations

import pytest

CPU_SECONDS = 0.25
CPU = "CPU time limit of 0.25 s"
SIZE = "size limit of 65,536 bytes"
DIGITS = "limited to 1,000 digits"
ITEMS = "limited to 10,000"

HOSTILE = [
    # (id, template, limit, words the refusal must contain)
    ("power", "{{ 9**(9**8) }}", "number_digits", DIGITS),
    ("power-7", "{{ 9**(9**7) }}", "number_digits", DIGITS),
    ("big-number", "{{ 10**100000 }}", "number_digits", DIGITS),
    ("repeat", "{{ 'x' * 50000000 }}", "max_output_bytes", SIZE),
    ("nested-range-loops", "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
     "cpu_seconds", CPU),
    ("nested-loops-over-text", "{% set s = 'x' * 9000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
     "cpu_seconds", CPU),
    ("recursive-macro", "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
     "cpu_seconds", CPU),
    ("namespace-doubling", "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}"
                           "{% endfor %}{{ ns.s|length }}", "max_output_bytes", SIZE),
    ("concat-doubling", "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}"
                        "{% endmacro %}{{ d('x', 40) }}", "max_output_bytes", SIZE),
    ("block-set-buffer", "{% set s = 'x' * 60000 %}{% set x %}{% for i in range(10000) %}{% for j in range(10) %}"
                         "{{ s }}{% endfor %}{% endfor %}{% endset %}{{ x|length }}", "max_output_bytes", SIZE),
    ("block-set-slices", "{% set s = 'x' * 60000 %}{% set x %}{% for i in range(10000) %}{{ s[i:] }}{% endfor %}"
                         "{% endset %}{{ x|length }}", "max_output_bytes", SIZE),
    ("many-small-pieces", "{% for i in range(10000) %}{{ 'x' * 10 }}{% endfor %}", "max_output_bytes", SIZE),
    ("center-filter", "{{ 'x'|center(10**9) }}", "max_output_bytes", SIZE),
    ("center-folded", "{{ 'x'|center(1000000000) }}", "max_output_bytes", SIZE),  # a constant Jinja used to fold
    ("format-filter-width", '{{ "%*s"|format(10**9, "x") }}', "max_output_bytes", SIZE),
    ("percent-width", '{{ "%*s" % (10**9, "x") }}', "max_output_bytes", SIZE),
    ("percent-precision", '{{ "%.1000000f" % 1.0 }}', "max_output_bytes", SIZE),
    ("str-format-width", "{{ '{:>1000000000}'.format(1) }}", "max_output_bytes", SIZE),
    ("str-format-nested-width", "{{ '{0:{1}}'.format(1, 1000000000) }}", "max_output_bytes", SIZE),
    ("str-format-repeated-field", "{{ ('{0}' * 2000).format('x' * 60000) }}", "max_output_bytes", SIZE),
    ("str-join", "{{ ('x' * 60000).join(['a'] * 100) }}", "max_output_bytes", SIZE),
    ("join-filter", "{{ range(10000)|map('replace', '', 'x' * 10)|join }}", "max_output_bytes", SIZE),
    ("replace-empty", "{{ 'abc'.replace('', 'x' * 60000) }}", "max_output_bytes", SIZE),
    ("replace-filter-empty", "{{ ('x' * 30000)|replace('', 'yy') }}", "max_output_bytes", SIZE),
    ("ljust", "{{ 'abc'.ljust(10**9) }}", "max_output_bytes", SIZE),
    ("indent", "{{ ('a\n' * 30000)|indent(100) }}", "max_output_bytes", SIZE),
    ("wordwrap", "{{ ('x' * 60000)|wordwrap(1, wrapstring='y' * 1000) }}", "max_output_bytes", SIZE),
    ("batch-fill", "{{ range(10000)|batch(10000, 'x' * 60000)|list }}", "max_output_bytes", SIZE),
    ("lipsum", "{{ lipsum(n=10**6) }}", "max_output_bytes", SIZE),
    ("nested-lists", "{% set a = [1,1,1,1,1,1,1,1,1,1] %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}"
                     "{% set c = [b,b,b,b,b,b,b,b,b,b] %}{% set d = [c,c,c,c,c,c,c,c,c,c] %}"
                     "{% set e = [d,d,d,d,d,d,d,d,d,d] %}{{ e }}", "max_output_bytes", SIZE),
    ("list-repeat", "{{ ['x' * 60000] * 10000 }}", "max_output_bytes", SIZE),
    ("growing-list", "{% set ns = namespace(l=[]) %}{% for i in range(10000) %}"
                     "{% set ns.l = ns.l + ['x' * 6000 ~ i] %}{% endfor %}", "max_output_bytes", SIZE),
    ("big-range", "{{ range(10**6)|list|length }}", "items", ITEMS),
]

HOSTILE_PARAMS = [pytest.param(source, limit, words, id=name) for name, source, limit, words in HOSTILE]

# A few of each kind, for the paths where the whole table would only repeat itself.
SAMPLE_NAMES = ("power", "repeat", "recursive-macro", "block-set-buffer", "str-format-width")
SAMPLE_PARAMS = [pytest.param(source, limit, words, id=name)
                 for name, source, limit, words in HOSTILE if name in SAMPLE_NAMES]
