import unittest

from snake_case import to_snake


class ToSnakeTest(unittest.TestCase):
    def test_camel_case(self):
        self.assertEqual(to_snake("parseJson"), "parse_json")

    def test_pascal_case(self):
        self.assertEqual(to_snake("ParseJsonFile"), "parse_json_file")

    def test_single_word(self):
        self.assertEqual(to_snake("word"), "word")

    def test_single_capital_word(self):
        self.assertEqual(to_snake("Word"), "word")

    def test_leading_acronym(self):
        self.assertEqual(to_snake("HTTPServer"), "http_server")

    def test_acronym_in_the_middle(self):
        self.assertEqual(to_snake("getHTTPResponse"), "get_http_response")

    def test_trailing_acronym(self):
        self.assertEqual(to_snake("userID"), "user_id")

    def test_digits_stay_with_the_word_before(self):
        self.assertEqual(to_snake("version2Update"), "version2_update")

    def test_already_snake_case(self):
        self.assertEqual(to_snake("already_snake"), "already_snake")

    def test_empty(self):
        self.assertEqual(to_snake(""), "")


if __name__ == "__main__":
    unittest.main()
