from running_total import running_total


def test_three():
    assert running_total([1, 2, 3]) == [1, 3, 6]


def test_empty():
    assert running_total([]) == []


def test_negatives():
    assert running_total([5, -5, 2]) == [5, 0, 2]
