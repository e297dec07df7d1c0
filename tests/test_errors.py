"""`one_line`: any caught error as the one line a record, a score's note or `status` shows."""

from __future__ import annotations

from trainables.errors import BadInputError, one_line


def test_the_type_and_the_first_line_that_says_something() -> None:
    err = RuntimeError("\n  \n  CUDA error: device-side assert  \nTraceback (most recent call last):\n  ...")
    assert one_line(err) == "RuntimeError: CUDA error: device-side assert"
    assert one_line(BadInputError("lr_g=-1.0 is out of range")) == "BadInputError: lr_g=-1.0 is out of range"


def test_an_empty_message_leaves_the_type_alone() -> None:
    assert one_line(KeyError()) == "KeyError"
    assert one_line(ValueError("   \n")) == "ValueError"


def test_a_long_line_is_cut_to_the_limit_and_says_so() -> None:
    err = ValueError("x" * 500)
    assert len(one_line(err)) == 200 and one_line(err).endswith("x...")
    assert one_line(err, limit=40) == "ValueError: " + "x" * 25 + "..."
    assert one_line(err, limit=None) == "ValueError: " + "x" * 500
