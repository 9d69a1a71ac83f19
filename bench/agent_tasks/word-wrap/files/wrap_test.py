import unittest

from wrap import wrap


class WrapTest(unittest.TestCase):
    def test_fits_on_one_line(self):
        self.assertEqual(wrap("hello world", 20), ["hello world"])

    def test_exact_fit(self):
        self.assertEqual(wrap("hello world", 11), ["hello world"])

    def test_breaks(self):
        self.assertEqual(wrap("the quick brown fox", 10), ["the quick", "brown fox"])

    def test_greedy(self):
        self.assertEqual(wrap("a b c d e f", 3), ["a b", "c d", "e f"])

    def test_long_word_on_its_own_line(self):
        self.assertEqual(wrap("go extraordinarily far", 6), ["go", "extraordinarily", "far"])

    def test_whitespace_is_normalised(self):
        self.assertEqual(wrap("  one\ttwo\n\nthree  ", 9), ["one two", "three"])

    def test_empty(self):
        self.assertEqual(wrap("   ", 5), [])

    def test_width_one(self):
        self.assertEqual(wrap("a bb", 1), ["a", "bb"])

    def test_bad_width(self):
        with self.assertRaises(ValueError):
            wrap("text", 0)


if __name__ == "__main__":
    unittest.main()
