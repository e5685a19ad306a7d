"""No-ops are not run: the normal form sets aside local names, comments and docstrings,
and nothing that changes what the code does."""

from __future__ import annotations

from pytest_aide.search.sameness import normal_form


def test_normal_forms_set_aside_names_comments_and_docstrings_only() -> None:
    source = 'X = 1\n\n\ndef f(values):\n    """Sum."""\n    total = 0\n' \
        '    for v in values:\n        total += v * X\n    return total\n'
    renamed = source.replace("total", "acc").replace(" v ", " item ").replace("v *", "item *")
    assert normal_form(renamed) == normal_form(source)
    assert normal_form(source.replace('    """Sum."""\n', "    # sums\n")) == normal_form(source)
    assert normal_form(source.replace("v * X", "v + X")) != normal_form(source)
    assert normal_form(source.replace("(values)", "(vals)").replace("in values", "in vals")) \
        != normal_form(source)  # a parameter's name is part of the interface
    assert normal_form(source.replace("* X", "* Y").replace("X = 1", "Y = 1")) \
        != normal_form(source)  # a module-level name is not a local
