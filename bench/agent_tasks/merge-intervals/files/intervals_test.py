import unittest

from intervals import merge


class MergeTest(unittest.TestCase):
    def test_empty(self):
        self.assertEqual(merge([]), [])

    def test_single(self):
        self.assertEqual(merge([(1, 2)]), [(1, 2)])

    def test_disjoint_are_sorted(self):
        self.assertEqual(merge([(5, 6), (1, 2)]), [(1, 2), (5, 6)])

    def test_overlapping(self):
        self.assertEqual(merge([(1, 4), (2, 6)]), [(1, 6)])

    def test_touching(self):
        self.assertEqual(merge([(1, 3), (3, 5)]), [(1, 5)])

    def test_contained(self):
        self.assertEqual(merge([(1, 10), (2, 3), (4, 5)]), [(1, 10)])

    def test_chain_out_of_order(self):
        self.assertEqual(merge([(8, 9), (1, 3), (2, 5), (4, 7)]), [(1, 7), (8, 9)])

    def test_point_interval(self):
        self.assertEqual(merge([(2, 2), (0, 1)]), [(0, 1), (2, 2)])

    def test_input_not_modified(self):
        data = [(3, 4), (1, 2)]
        merge(data)
        self.assertEqual(data, [(3, 4), (1, 2)])

    def test_reversed_interval_is_rejected(self):
        with self.assertRaises(ValueError):
            merge([(1, 2), (5, 3)])


if __name__ == "__main__":
    unittest.main()
