"""`{{ variable }}` templates: which variables they use, declared variables, rendering."""

import pytest

from providers.api.errors import InvalidRequestError
from providers.api.prompts import checked_variables, placeholders, render


def test_placeholders_are_found_once_in_order_of_use():
    assert placeholders("Hi {{name}}, {{ topic }} again, {{name}}; {{ not valid-name }} {single}") == ["name", "topic"]


def test_undeclared_variables_come_from_the_template():
    assert checked_variables("Tell {{ who }} about {{what}}", None) == ["who", "what"]


@pytest.mark.parametrize("declared, named", [
    (["who"], "uses what"),
    (["who", "what", "when"], "declares when"),
    (["who", "what", "not-a-name"], "not-a-name"),
])
def test_declared_variables_must_match_the_template(declared, named):
    with pytest.raises(InvalidRequestError) as failure:
        checked_variables("Tell {{ who }} about {{what}}", declared)
    assert failure.value.param == "variables" and named in failure.value.message


def test_render_fills_every_placeholder_and_names_the_missing_ones():
    assert render("Tell {{ who }} about {{what}}.", {"who": "Ada", "what": "tides"}) == "Tell Ada about tides."
    with pytest.raises(InvalidRequestError) as failure:
        render("Tell {{ who }} about {{what}} and {{ when }}.", {"who": "Ada"})
    assert "what, when" in failure.value.message
