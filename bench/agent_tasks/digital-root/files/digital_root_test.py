import unittest

from digital_root import digital_root, persistence


class DigitalRootTest(unittest.TestCase):
    def test_single_digit(self):
        self.assertEqual(digital_root(7), 7)

    def test_zero(self):
        self.assertEqual(digital_root(0), 0)

    def test_two_digits(self):
        self.assertEqual(digital_root(38), 2)

    def test_several_rounds(self):
        self.assertEqual(digital_root(9875), 2)

    def test_large_number(self):
        self.assertEqual(digital_root(123456789), 9)

    def test_negative_is_rejected(self):
        with self.assertRaises(ValueError):
            digital_root(-5)


class PersistenceTest(unittest.TestCase):
    def test_single_digit_needs_no_round(self):
        self.assertEqual(persistence(4), 0)

    def test_one_round(self):
        self.assertEqual(persistence(12), 1)

    def test_three_rounds(self):
        self.assertEqual(persistence(9875), 3)

    def test_negative_is_rejected(self):
        with self.assertRaises(ValueError):
            persistence(-1)


if __name__ == "__main__":
    unittest.main()
