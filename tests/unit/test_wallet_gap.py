from gateway.domain.wallet import longest_unused_run


def test_longest_run_counts_the_middle_and_the_tail() -> None:
    assert longest_unused_run(0, []).longest == 0
    gap = longest_unused_run(6, [0, 4])
    assert (gap.longest, gap.start, gap.end) == (3, 1, 3)
    tail = longest_unused_run(10, [0, 2])
    assert (tail.longest, tail.start, tail.end) == (7, 3, 9)
    assert longest_unused_run(3, [0, 1, 2]).longest == 0
    assert longest_unused_run(4, []).longest == 4
