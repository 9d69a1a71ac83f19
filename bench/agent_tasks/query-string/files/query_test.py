import unittest

from query import build_query, parse_query


class ParseQueryTest(unittest.TestCase):
    def test_empty(self):
        self.assertEqual(parse_query(""), {})

    def test_repeated_keys(self):
        self.assertEqual(parse_query("a=1&b=2&a=3"), {"a": ["1", "3"], "b": ["2"]})

    def test_leading_question_mark(self):
        self.assertEqual(parse_query("?x=1"), {"x": ["1"]})

    def test_decoding(self):
        self.assertEqual(parse_query("q=caf%C3%A9+au+lait"), {"q": ["café au lait"]})

    def test_key_is_decoded_too(self):
        self.assertEqual(parse_query("first+name=Ann"), {"first name": ["Ann"]})

    def test_pair_without_value(self):
        self.assertEqual(parse_query("flag&x=1"), {"flag": [""], "x": ["1"]})

    def test_empty_pairs_skipped(self):
        self.assertEqual(parse_query("a=1&&b=2&"), {"a": ["1"], "b": ["2"]})

    def test_only_first_equals_splits(self):
        self.assertEqual(parse_query("x=a=b"), {"x": ["a=b"]})


class BuildQueryTest(unittest.TestCase):
    def test_simple(self):
        self.assertEqual(build_query({"a": "1", "b": "2"}), "a=1&b=2")

    def test_list_values(self):
        self.assertEqual(build_query({"tag": ["x", "y"]}), "tag=x&tag=y")

    def test_encoding(self):
        self.assertEqual(build_query({"q": "a&b c"}), "q=a%26b+c")

    def test_round_trip(self):
        params = {"name": ["Zoë Ann"], "sum": ["1+1=2"]}
        self.assertEqual(parse_query(build_query(params)), params)


if __name__ == "__main__":
    unittest.main()
