import unittest

from sparse import SparseVector


class SparseVectorTest(unittest.TestCase):
    def test_unset_entries_are_zero(self):
        v = SparseVector(5)
        self.assertEqual(v[3], 0)
        self.assertEqual(v.nonzero(), 0)

    def test_initial_values(self):
        v = SparseVector(4, {1: 2.5, 3: -1})
        self.assertEqual(v.to_list(), [0, 2.5, 0, -1])

    def test_len(self):
        self.assertEqual(len(SparseVector(1000)), 1000)

    def test_set_and_get(self):
        v = SparseVector(3)
        v[2] = 7
        self.assertEqual(v[2], 7)
        self.assertEqual(v.nonzero(), 1)

    def test_setting_zero_removes(self):
        v = SparseVector(3, {0: 1})
        v[0] = 0
        self.assertEqual(v.nonzero(), 0)

    def test_index_out_of_range(self):
        v = SparseVector(3)
        with self.assertRaises(IndexError):
            v[3]
        with self.assertRaises(IndexError):
            v[-1] = 2
        with self.assertRaises(IndexError):
            SparseVector(2, {5: 1})

    def test_dot(self):
        v = SparseVector(5, {0: 1, 2: 3, 4: 5})
        w = SparseVector(5, {2: 2, 3: 9, 4: -1})
        self.assertEqual(v.dot(w), 1)

    def test_add(self):
        v = SparseVector(4, {0: 1, 1: 2})
        w = SparseVector(4, {1: -2, 3: 4})
        total = v + w
        self.assertEqual(total.to_list(), [1, 0, 0, 4])
        self.assertEqual(total.nonzero(), 2)

    def test_add_leaves_operands_alone(self):
        v = SparseVector(2, {0: 1})
        w = SparseVector(2, {0: 1})
        v + w
        self.assertEqual(v.to_list(), [1, 0])

    def test_size_mismatch(self):
        with self.assertRaises(ValueError):
            SparseVector(2).dot(SparseVector(3))
        with self.assertRaises(ValueError):
            SparseVector(2) + SparseVector(3)


if __name__ == "__main__":
    unittest.main()
