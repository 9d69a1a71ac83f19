import unittest

from clamp import clamp


class ClampTest(unittest.TestCase):
    def test_values_inside_are_kept(self):
        self.assertEqual(clamp([2, 3, 4], 1, 5), [2, 3, 4])

    def test_low_values_are_raised(self):
        self.assertEqual(clamp([-3, 0, 2], 0, 10), [0, 0, 2])

    def test_high_values_are_lowered(self):
        self.assertEqual(clamp([5, 11, 99], 0, 10), [5, 10, 10])

    def test_floats(self):
        self.assertEqual(clamp([0.5, 1.5, 2.5], 1.0, 2.0), [1.0, 1.5, 2.0])

    def test_empty(self):
        self.assertEqual(clamp([], 0, 1), [])

    def test_input_is_not_modified(self):
        values = [1, 50, 100]
        clamp(values, 10, 20)
        self.assertEqual(values, [1, 50, 100])

    def test_low_equal_to_high(self):
        self.assertEqual(clamp([1, 2, 3], 2, 2), [2, 2, 2])

    def test_low_above_high_is_rejected(self):
        with self.assertRaises(ValueError):
            clamp([1], 5, 1)


if __name__ == "__main__":
    unittest.main()
