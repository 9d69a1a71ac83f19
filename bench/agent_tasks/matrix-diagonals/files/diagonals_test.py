import unittest

from diagonals import diagonal_sums, is_magic


class DiagonalSumsTest(unittest.TestCase):
    def test_one_by_one(self):
        self.assertEqual(diagonal_sums([[5]]), (5, 5))

    def test_two_by_two(self):
        self.assertEqual(diagonal_sums([[1, 2], [3, 4]]), (5, 5))

    def test_three_by_three(self):
        self.assertEqual(diagonal_sums([[1, 2, 3], [4, 5, 6], [7, 8, 10]]), (16, 15))

    def test_empty(self):
        self.assertEqual(diagonal_sums([]), (0, 0))

    def test_not_square(self):
        with self.assertRaises(ValueError):
            diagonal_sums([[1, 2, 3], [4, 5, 6]])

    def test_ragged(self):
        with self.assertRaises(ValueError):
            diagonal_sums([[1, 2], [3]])


class IsMagicTest(unittest.TestCase):
    def test_magic(self):
        self.assertTrue(is_magic([[2, 7, 6], [9, 5, 1], [4, 3, 8]]))

    def test_rows_equal_but_columns_not(self):
        self.assertFalse(is_magic([[1, 2], [2, 1]]))

    def test_diagonal_differs(self):
        self.assertFalse(is_magic([[1, 1, 1], [1, 1, 1], [1, 1, 2]]))

    def test_not_square(self):
        with self.assertRaises(ValueError):
            is_magic([[1, 2]])


if __name__ == "__main__":
    unittest.main()
