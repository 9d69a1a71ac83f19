import unittest

from headline import headline


class HeadlineTest(unittest.TestCase):
    def test_simple(self):
        self.assertEqual(headline("hello world"), "Hello World")

    def test_minor_words_stay_lower(self):
        self.assertEqual(headline("the lord of the rings"), "The Lord of the Rings")

    def test_last_word_is_capitalised(self):
        self.assertEqual(headline("what are you looking at"), "What Are You Looking At")

    def test_rest_of_word_is_lowered(self):
        self.assertEqual(headline("iPHONE sales DOUBLE"), "Iphone Sales Double")

    def test_whitespace_is_collapsed(self):
        self.assertEqual(headline("  a   tale of\ttwo cities "), "A Tale of Two Cities")

    def test_hyphenated_words(self):
        self.assertEqual(headline("a well-known story"), "A Well-Known Story")

    def test_single_minor_word(self):
        self.assertEqual(headline("the"), "The")

    def test_empty(self):
        self.assertEqual(headline("   "), "")


if __name__ == "__main__":
    unittest.main()
