from listutil import unique


def test_keeps_first_occurrence_order():
    assert unique(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_numbers():
    assert unique([3, 1, 3, 2, 1]) == [3, 1, 2]


def test_empty():
    assert unique([]) == []
