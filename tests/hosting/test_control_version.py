"""Which control plane a starting front door restarts: an older one only."""

from __future__ import annotations

from picloud.hosting.control_actor import _release


def test_releases_compare_by_their_numbers() -> None:
    assert _release("0.1.0") < _release("0.2.0") < _release("0.10.0")
    assert _release("1.2.3rc1") == _release("1.2.3") == (1, 2, 3)
    assert _release("2.0") < _release("2.0.1")
    assert _release("dev") == ()
