from slug import slugify


def test_simple():
    assert slugify("Hello World") == "hello-world"


def test_punctuation_is_dropped():
    assert slugify("Hello, World!") == "hello-world"


def test_runs_of_spaces_give_one_hyphen():
    assert slugify("  Many   spaces here ") == "many-spaces-here"


def test_digits_are_kept():
    assert slugify("Top 10 tips: part 2") == "top-10-tips-part-2"
