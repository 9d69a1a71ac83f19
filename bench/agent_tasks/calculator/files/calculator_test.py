import unittest

from calculator import calculate


class CalculateTest(unittest.TestCase):
    def test_number(self):
        self.assertEqual(calculate("42"), 42)

    def test_addition(self):
        self.assertEqual(calculate("1 + 2"), 3)

    def test_precedence(self):
        self.assertEqual(calculate("2 + 3 * 4"), 14)

    def test_left_to_right(self):
        self.assertEqual(calculate("8 - 3 - 2"), 3)

    def test_no_spaces(self):
        self.assertEqual(calculate("10/4*2"), 5)

    def test_parentheses(self):
        self.assertEqual(calculate("(2 + 3) * (4 - 1)"), 15)

    def test_nested_parentheses(self):
        self.assertEqual(calculate("((1 + 1) * (2 + 2)) - 3"), 5)

    def test_negation(self):
        self.assertEqual(calculate("-3 + 5"), 2)
        self.assertEqual(calculate("2 * -3"), -6)
        self.assertEqual(calculate("-(2 + 3)"), -5)

    def test_whole_division_is_int(self):
        result = calculate("7 - 6 / 2")
        self.assertEqual(result, 4)
        self.assertIsInstance(result, int)

    def test_fraction_is_float(self):
        self.assertEqual(calculate("7 / 2"), 3.5)

    def test_division_by_zero(self):
        with self.assertRaises(ZeroDivisionError):
            calculate("1 / (2 - 2)")

    def test_invalid(self):
        for bad in ["", "1 +", "2 * (3", "4 )", "3 & 4", "1 2"]:
            with self.assertRaises(ValueError, msg=bad):
                calculate(bad)


if __name__ == "__main__":
    unittest.main()
