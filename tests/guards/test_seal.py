"""The parent accepts only results signed with the key it gave the worker."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_aide.guards.seal import allowed_introspection, new_key, read_signed, signature


def test_signed_results_are_read_and_anything_else_is_forged(tmp_path: Path) -> None:
    key, path = new_key(), tmp_path / "results.json"
    payload = json.dumps({"tests": {"t::a": {"outcome": "passed"}}})
    path.write_text(json.dumps({"payload": payload, "mac": signature(key, payload)}))
    assert read_signed(path, key) == ({"tests": {"t::a": {"outcome": "passed"}}}, "")
    data, why = read_signed(path, new_key())  # signed with another key
    assert data is None and "signature does not match" in why
    path.write_text(json.dumps({"payload": payload.replace("passed", "failed"),
                                "mac": signature(key, payload)}))
    assert "signature does not match" in read_signed(path, key)[1]
    path.write_text(payload)  # an unsigned results file, as older workers wrote
    assert read_signed(path, key)[0] is None
    path.unlink()
    assert read_signed(path, key) == (None, "")  # nothing written: a crash, not a forgery


def test_only_introspection_the_original_names_is_allowed() -> None:
    assert allowed_introspection(None) == []
    assert allowed_introspection("def f():\n    return 1\n") == []
    found = allowed_introspection("import sys, gc\nf = sys._getframe(1).f_back\ngc.get_objects()")
    assert set(found) == {"sys._getframe", "gc.get_objects", "f_back"}
