import unittest

from versions import compare, latest


class CompareTest(unittest.TestCase):
    def test_equal(self):
        self.assertEqual(compare("1.2.3", "1.2.3"), 0)

    def test_lower(self):
        self.assertEqual(compare("1.2.3", "1.3.0"), -1)

    def test_greater(self):
        self.assertEqual(compare("2.0", "1.9.9"), 1)

    def test_numeric_not_text(self):
        self.assertEqual(compare("1.2.10", "1.2.9"), 1)

    def test_missing_parts_are_zero(self):
        self.assertEqual(compare("1.2", "1.2.0"), 0)

    def test_longer_is_greater_when_extra_part_nonzero(self):
        self.assertEqual(compare("1.2", "1.2.1"), -1)

    def test_invalid_part(self):
        with self.assertRaises(ValueError):
            compare("1.x", "1.0")

    def test_empty_part(self):
        with self.assertRaises(ValueError):
            compare("1..2", "1.0")


class LatestTest(unittest.TestCase):
    def test_latest(self):
        self.assertEqual(latest(["1.2.9", "1.10", "1.2.10"]), "1.10")

    def test_single(self):
        self.assertEqual(latest(["0.1"]), "0.1")

    def test_empty(self):
        with self.assertRaises(ValueError):
            latest([])


if __name__ == "__main__":
    unittest.main()
