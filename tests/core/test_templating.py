"""The sandboxed renderer: the four roots, strict missing paths, the sandbox, limits, references() and check()."""
import copy
from datetime import date, datetime, timedelta, timezone

import jinja2
import pytest

from atlas.core import templating
from atlas.core.templating import MAX_OUTPUT, ROOTS, TemplateError, check, references, render, render_value

CONTEXT = {
    "trigger": {"class_name": "Spin 45", "starts_at": "2024-05-01T18:30:00Z", "items": [{"sku": "A1"}, {"sku": "B2"}]},
    "contact": {"first_name": "Ana", "last_name": "Silva", "tags": ["trial", "vip"], "address": {"city": "Porto"},
                "note": "<b>Tom & Jerry</b>"},
    "vars": {"count": 3, "price": 12.5, "sep": " / "},
    "steps": {"lookup": {"output": {"status": "active", "plans": [{"name": "Gold"}, {"name": "Silver"}]}}},
}


def failure(template: str, context=CONTEXT, **kwargs) -> TemplateError:
    """The TemplateError rendering raises (and never a Jinja exception)."""
    with pytest.raises(TemplateError) as caught:
        render(template, context, **kwargs)
    assert not isinstance(caught.value, jinja2.TemplateError)
    return caught.value


def test_the_roots():
    assert ROOTS == ("trigger", "contact", "vars", "steps")


@pytest.mark.parametrize("template, expected", [
    ("Hi {{ contact.first_name }}, your trial class is {{ trigger.class_name }} at "
     "{{ trigger.starts_at | datetime('%a %d %b, %H:%M') }}",
     "Hi Ana, your trial class is Spin 45 at Wed 01 May, 18:30"),
    ("{{ vars.count }} classes at {{ vars.price }}", "3 classes at 12.5"),
    ("{{ steps.lookup.output.status }}", "active"),
    ("{{ contact.address.city }}", "Porto"),
    ("{{ trigger.items[1].sku }}", "B2"),
    ("{{ trigger['items'][0]['sku'] }}", "A1"),
    ("{{ steps['lookup'].output['plans'][1].name }}", "Silver"),
    ("{{ trigger.items | length }}", "2"),  # the payload's key, not dict.items
    ("{{ contact.tags | join(vars.sep) }}", "trial / vip"),
    ("{% for plan in steps.lookup.output.plans %}{{ loop.index }}.{{ plan.name | upper }} {% endfor %}",
     "1.GOLD 2.SILVER "),
    ("{% set n = vars.count * 2 %}{{ n }}", "6"),
    ("{% if contact.first_name is defined %}yes{% endif %}{% if contact.nickname is defined %}no{% endif %}", "yes"),
    ("{{ contact.first_name | lower | replace('a', 'o') | capitalize }}", "Ono"),
    ("{{ '  x ' | trim | title }}|{{ 'a long sentence here' | truncate(12, leeway=0) }}", "X|a long..."),
    ("{{ vars.price | round | int }} {{ '2.5' | float }}", "12 2.5"),
    ("{{ range(3) | join(',') }}", "0,1,2"),
    ("Plain text, no tags", "Plain text, no tags"),
    ("Keeps its newline\n", "Keeps its newline\n"),
])
def test_render_reads_the_roots(template, expected):
    assert render(template, CONTEXT) == expected


@pytest.mark.parametrize("template, expected", [
    ("{{ contact.nickname | default(contact.first_name) }}", "Ana"),
    ("{{ contact.nickname | default('friend') }}", "friend"),
    ("{{ contact.profile.nickname.short | default('friend') }}", "friend"),  # missing anywhere along the path
    ("{{ steps.later.output.status | default('none yet') }}", "none yet"),
    ("{{ contact.first_name | default('friend') }}", "Ana"),
])
def test_default_covers_optional_values(template, expected):
    assert render(template, CONTEXT) == expected


@pytest.mark.parametrize("template, message, reference", [
    ("{{ contact.favourite_class }}", "contact.favourite_class is not defined", "contact.favourite_class"),
    ("{{ steps.lookup.output.plan }}", "steps.lookup.output.plan is not defined (step 'lookup' has no output 'plan')",
     "steps.lookup.output.plan"),
    ("{{ steps.lookup.output.plan.name }}",
     "steps.lookup.output.plan.name is not defined (step 'lookup' has no output 'plan')",
     "steps.lookup.output.plan.name"),
    ("{{ steps.billing.output.status }}",
     "steps.billing.output.status is not defined (step 'billing' has not run before this one)",
     "steps.billing.output.status"),
    ("{{ steps.lookup.status }}",
     "steps.lookup.status is not defined (a step exposes only its output: steps.lookup.output.status)",
     "steps.lookup.status"),
    ("{{ first_name }}", "first_name is not defined (a template can read only trigger, contact, vars and steps)",
     "first_name"),
    ("{{ contact.address.street.number }}",
     "contact.address.street.number is not defined (contact.address has no 'street')", "contact.address.street.number"),
    ("{{ trigger.items[5].sku }}", "trigger.items.5.sku is not defined (trigger.items has no '5')",
     "trigger.items.5.sku"),
    ("{{ steps['lookup']['output']['plans'][0]['price'] }}",
     "steps.lookup.output.plans.0.price is not defined (step 'lookup' has no output 'plans.0.price')",
     "steps.lookup.output.plans.0.price"),
    ("{% for item in trigger.items %}{{ item.colour }}{% endfor %}", "trigger.items.0.colour is not defined",
     "trigger.items.0.colour"),
    ("{% if contact.nickname %}x{% endif %}", "contact.nickname is not defined", "contact.nickname"),
    ("{{ contact.nickname ~ '!' }}", "contact.nickname is not defined", "contact.nickname"),
    ("{{ contact.nicknames | join(', ') }}", "contact.nicknames is not defined", "contact.nicknames"),
    ("{{ trigger.ends_at | datetime }}", "trigger.ends_at is not defined", "trigger.ends_at"),
    ("{{ contact.first_name.initial }}", "contact.first_name.initial is not defined", "contact.first_name.initial"),
    ("{{ unknown() }}", "unknown is not defined (a template can read only trigger, contact, vars and steps)",
     "unknown"),
])
def test_a_missing_path_names_the_full_path(template, message, reference):
    error = failure(template)

    assert (error.message, error.reference, str(error)) == (message, reference, message)
    assert isinstance(error, ValueError)


def test_a_root_absent_from_the_run_says_so():
    error = failure("{{ contact.first_name }}", {"trigger": {}, "vars": {}, "steps": {}})

    assert error.message == "contact.first_name is not defined (this run has no contact)"


def test_a_value_shared_by_two_roots_is_named_by_the_path_the_template_wrote():
    shared = {"status": "ok"}
    context = {"trigger": shared, "steps": {"lookup": {"output": shared}}}

    assert failure("{{ steps.lookup.output.plan }}", context).reference == "steps.lookup.output.plan"
    assert failure("{{ trigger.plan }}", context).reference == "trigger.plan"


def test_a_missing_key_on_a_value_the_template_built_still_explains_itself():
    error = failure("{% set x = {'a': 1} %}{{ x.b }}")

    assert error.message == "'dict object' has no attribute 'b' in the template"
    assert error.reference is None


@pytest.mark.parametrize("template", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__['os'] }}",
    "{{ namespace.__init__ }}",
    "{{ trigger.items.append({'sku': 'X'}) }}",
    "{{ vars.update({'count': 99}) }}",
    "{{ contact.tags.pop() }}",
    "{{ trigger.class_name.format.__globals__ }}",
])
def test_the_sandbox_refuses_escapes_and_mutation(template):
    before = copy.deepcopy(CONTEXT)

    error = failure(template)

    assert error.message.startswith("The template uses something templates may not use: access to attribute")
    assert CONTEXT == before


@pytest.mark.parametrize("template, message", [
    ("{% if %}", "Syntax error on line 1: Expected an expression, got 'end of statement block'"),
    ("Hi\n\n{{ contact.first_name }", "Syntax error on line 3: unexpected '}'"),
    ("{% for x in trigger.items %}", "Syntax error on line 1: Unexpected end of template."),
    ("{{ contact.note | safe }}", "Syntax error on line 1: No filter named 'safe'. The filters are: capitalize, date, "
                                  "datetime, default, float, int, join, length, lower, replace, round, title, trim, "
                                  "truncate, upper."),
    ("{{ contact | attr('first_name') }}", "Syntax error on line 1: No filter named 'attr'."),
])
def test_syntax_errors_name_their_line(template, message):
    assert failure(template).message.startswith(message)


@pytest.mark.parametrize("template, message", [
    ("{% for i in range(50001) %}xy{% endfor %}", f"The template's output is longer than {MAX_OUTPUT:,} characters."),
    ("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
     "The template loops too much: its ranges may count at most 100,000 numbers."),
    ("{{ range(10 ** 30) | length }}", "The template loops too much: its ranges may count at most 100,000 numbers."),
    ("{{ 'x' * 1000000000 }}", "The template builds a value that is too big (using *)."),
    ("{{ [1, 2] * vars.count * 100000 }}", "The template builds a value that is too big (using *)."),
    ("{{ 10 ** 1000000 }}", "The template builds a value that is too big (using **)."),
    ("{% macro loop_forever() %}{{ loop_forever() }}{% endmacro %}{{ loop_forever() }}",
     "The template could not be rendered: maximum recursion depth exceeded"),
    ("{{ vars.count / 0 }}", "The template could not be rendered: division by zero"),
])
def test_runaway_and_broken_templates_fail_with_a_message(template, message):
    assert failure(template).message.startswith(message)


def test_output_up_to_the_limit_is_fine():
    assert len(render("{% for i in range(50000) %}xy{% endfor %}", CONTEXT)) == MAX_OUTPUT
    assert render("{{ 'ab' * 3 }} {{ 2 ** 10 }}", CONTEXT) == "ababab 1024"


def test_the_range_budget_is_per_render():
    template = "{% for i in range(60000) %}{% endfor %}ok"

    assert [render(template, CONTEXT) for _ in range(3)] == ["ok", "ok", "ok"]


@pytest.mark.parametrize("html, expected", [
    (True, "Note: &lt;b&gt;Tom &amp; Jerry&lt;/b&gt; <i>kept</i>"),
    (False, "Note: <b>Tom & Jerry</b> <i>kept</i>"),
])
def test_html_autoescapes_data_but_not_the_template(html, expected):
    rendered = render("Note: {{ contact.note }} <i>kept</i>", CONTEXT, html=html)

    assert rendered == expected
    assert type(rendered) is str


def test_compiled_templates_are_cached():
    template = "cache check {{ contact.first_name }}"
    render(template, CONTEXT)
    hits = templating._compile.cache_info().hits

    render(template, {**CONTEXT, "contact": {"first_name": "Bo"}})

    assert templating._compile.cache_info().hits == hits + 1


def test_render_value_renders_every_string_and_leaves_the_rest():
    value = {
        "to": "{{ contact.first_name }}",
        "{{ contact.last_name }}": "key left alone",
        "body": {"lines": ["Hi {{ contact.first_name }}", "{% if vars.count > 2 %}many{% endif %}"], "n": 3},
        "pair": ("{{ vars.count }}", None),
        "flags": [True, 1.5, None, {"deep": "{{ steps.lookup.output.status }}"}],
    }

    assert render_value(value, CONTEXT) == {
        "to": "Ana",
        "{{ contact.last_name }}": "key left alone",
        "body": {"lines": ["Hi Ana", "many"], "n": 3},
        "pair": ("3", None),
        "flags": [True, 1.5, None, {"deep": "active"}],
    }


@pytest.mark.parametrize("value", [42, None, 1.5, True, "", "plain", {"a": "b"}, ["x", 3]])
def test_render_value_without_templates_is_unchanged(value):
    assert render_value(value, CONTEXT) == value


@pytest.mark.parametrize("text", ["plain SMS", "a { brace }", "50% off", "{ {not a tag} }", "{{ contact.first_name"])
def test_render_value_fast_path_does_not_touch_jinja(monkeypatch, text):
    def boom(*args, **kwargs):
        raise AssertionError("rendered")

    monkeypatch.setattr(templating, "render", boom)
    if "{{" in text:
        with pytest.raises(AssertionError):
            render_value(text, CONTEXT)
    else:
        assert render_value(text, CONTEXT) is text


def test_render_value_escapes_in_html_and_raises_template_errors():
    assert render_value(["{{ contact.note }}"], CONTEXT, html=True) == ["&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"]
    with pytest.raises(TemplateError, match="contact.age is not defined"):
        render_value({"body": ["{{ contact.age }}"]}, CONTEXT)


@pytest.mark.parametrize("template, expected", [
    ("Hi {{ contact.first_name }}", {"contact.first_name"}),
    ("{{ contact }}", {"contact"}),
    ("{{ steps['lookup'].output['status'] }}", {"steps.lookup.output.status"}),
    ("{{ trigger.items[0].sku }}{{ trigger[\"class_name\"] }}", {"trigger.items.0.sku", "trigger.class_name"}),
    ("{{ steps[vars.step_id].output.status }}", {"steps", "vars.step_id"}),
    ("{{ trigger.items[1:3] }}{{ trigger.items[vars.i].sku }}", {"trigger.items", "vars.i"}),
    ("{{ contact.nickname | default(contact.first_name) | truncate(vars.max_length) }}",
     {"contact.nickname", "contact.first_name", "vars.max_length"}),
    ("{{ trigger.starts_at | datetime(vars.format) }}", {"trigger.starts_at", "vars.format"}),
    ("{% if trigger.vip %}{{ vars.a }}{% elif steps.x.output.y is defined %}b"
     "{% else %}{{ contact.tags[0] }}{% endif %}",
     {"trigger.vip", "vars.a", "steps.x.output.y", "contact.tags.0"}),
    ("{{ vars.a if trigger.flag else vars.b }}", {"vars.a", "trigger.flag", "vars.b"}),
    ("{% for item in trigger.items if item.sku %}{{ item.sku }}{{ loop.index }}{{ vars.x }}{% endfor %}",
     {"trigger.items", "vars.x"}),
    ("{% for k, v in trigger.data.items() %}{{ k }}={{ v }}{% endfor %}", {"trigger.data"}),
    ("{% for item in trigger.items %}{% else %}{{ item }}{% endfor %}{{ item }}", {"trigger.items", "item"}),
    ("{% set name = contact.first_name %}{{ name | upper }}{{ name.x }}", {"contact.first_name"}),
    ("{{ name }}{% set name = 1 %}", {"name"}),
    ("{% set contact = trigger.person %}{{ contact.first_name }}", {"trigger.person"}),
    ("{% set ns = namespace(n=0) %}{% for p in steps.a.output.plans %}{% set ns.n = ns.n + p.price %}{% endfor %}"
     "{{ ns.n }}", {"steps.a.output.plans"}),
    ("{% set body %}{{ contact.email }}{% endset %}{{ body }}", {"contact.email"}),
    ("{% with y = trigger.w %}{{ y.k }}{% endwith %}", {"trigger.w"}),
    ("{% macro hi(who, punct=vars.punct) %}{{ who.name }}{{ punct }}{% endmacro %}{{ hi(contact) }}",
     {"vars.punct", "contact"}),
    ("{{ contact.first_name.upper() }}{{ (trigger.a or trigger.b).c }}",
     {"contact.first_name", "trigger.a", "trigger.b"}),
    ("{{ range(vars.n) | join }}{{ cycler('a').next() }}", {"vars.n"}),
    ("{{ loop.index }}{{ foo.bar }}", {"loop.index", "foo.bar"}),
    ("no tags at all", set()),
])
def test_references(template, expected):
    assert references(template) == expected


def test_references_of_a_broken_template_is_a_syntax_error():
    with pytest.raises(TemplateError, match="^Syntax error on line 1"):
        references("{{ contact. }}")


@pytest.mark.parametrize("template, expected", [
    ("Hi {{ contact.first_name }} {{ steps.lookup.output.status }} {{ steps }}", []),
    ("{{ first_name }}", [("UNKNOWN_ROOT", "first_name")]),
    ("{{ contact.first_name }}{{ customer.email }}{{ env.SECRET }}",
     [("UNKNOWN_ROOT", "customer.email"), ("UNKNOWN_ROOT", "env.SECRET")]),
    ("{{ steps.lookup.status }}", [("STEP_WITHOUT_OUTPUT", "steps.lookup.status")]),
    ("{{ steps.lookup }}", [("STEP_WITHOUT_OUTPUT", "steps.lookup")]),
    ("{% for x in items %}{{ x }}{% endfor %}", [("UNKNOWN_ROOT", "items")]),
    ("{% for x in trigger.items %}{{ x.sku }}{% endfor %}", []),
    ("{{ contact.first_name", [("SYNTAX_ERROR", None)]),
    ("{{ x | tojson }}", [("SYNTAX_ERROR", None)]),
])
def test_check_codes(template, expected):
    assert [(p["code"], p.get("reference")) for p in check(template)] == expected


def test_check_messages():
    unknown, no_output = check("{{ customer.email }}{{ steps.lookup.plan }}")
    [syntax] = check("ok\n{% if contact.vip %}")

    assert unknown["message"] == ("customer.email cannot be read: "
                                  "a template can read only trigger, contact, vars and steps.")
    assert no_output["message"] == ("steps.lookup.plan reads the step itself, but a step exposes only its output: "
                                    "did you mean steps.lookup.output.plan?")
    assert syntax["message"].startswith("Syntax error on line 2: Unexpected end of template.")
    assert "reference" not in syntax


@pytest.mark.parametrize("value, template, expected", [
    ("2024-05-01T18:30:00Z", "{{ v | datetime('%a %d %b, %H:%M') }}", "Wed 01 May, 18:30"),
    ("2024-05-01T18:30:00+01:00", "{{ v | datetime('%H:%M %z') }}", "18:30 +0100"),
    ("2024-05-01 07:05", "{{ v | datetime }}", "2024-05-01 07:05"),
    ("2024-05-01", "{{ v | datetime }}", "2024-05-01 00:00"),
    (datetime(2024, 12, 24, 9, 0, tzinfo=timezone(timedelta(hours=-5))), "{{ v | datetime('%d/%m %H:%M') }}",
     "24/12 09:00"),
    (date(2024, 2, 29), "{{ v | datetime('%d %B') }}", "29 February"),
    ("2024-05-01T23:59:59Z", "{{ v | date }}", "2024-05-01"),
    ("2024-05-01T23:59:59Z", "{{ v | date('%A %d') }}", "Wednesday 01"),
    (date(2024, 2, 29), "{{ v | date('%d/%m/%Y') }}", "29/02/2024"),
    (datetime(2024, 2, 29, 13, 0), "{{ v | date }}", "2024-02-29"),
])
def test_datetime_and_date_filters(value, template, expected):
    assert render(template, {"v": value}) == expected


@pytest.mark.parametrize("value", ["tomorrow", "01/05/2024", "", 1714588200, None, ["2024-05-01"]])
@pytest.mark.parametrize("filter_name", ["datetime", "date"])
def test_datetime_and_date_filters_refuse_what_is_not_a_date(value, filter_name):
    error = failure(f"{{{{ v | {filter_name} }}}}", {"v": value})

    assert error.message == f"{value!r} is not a date and time (expected ISO 8601, such as 2024-05-01T18:30:00Z)."
