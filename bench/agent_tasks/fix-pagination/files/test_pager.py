from pager import page, page_count

ITEMS = list(range(25))


def test_first_page():
    assert page(ITEMS, 1) == list(range(10))


def test_second_page():
    assert page(ITEMS, 2) == list(range(10, 20))


def test_last_page_is_short():
    assert page(ITEMS, 3) == [20, 21, 22, 23, 24]


def test_page_count():
    assert page_count(ITEMS) == 3
