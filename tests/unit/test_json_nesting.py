"""Request bodies nested deeper than any of ours are refused before the parser sees them."""

from gateway.http.schemas import MAX_DEPTH, too_deep


def nest(levels: int) -> bytes:
    return b'{"a": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


def test_depth_at_the_limit_passes_and_one_more_is_refused() -> None:
    assert not too_deep(nest(MAX_DEPTH), MAX_DEPTH)
    assert too_deep(nest(MAX_DEPTH + 1), MAX_DEPTH)
    assert too_deep(nest(100_000), MAX_DEPTH)


def test_brackets_inside_strings_do_not_nest() -> None:
    text = b'{"a": "' + b"[{" * 200 + b'", "b": "\\"[[[[", "c": []}'
    assert not too_deep(text, MAX_DEPTH)


def test_many_brackets_side_by_side_are_not_depth() -> None:
    assert not too_deep(b'{"a": [' + b"[], " * 500 + b"[]]}", MAX_DEPTH)
