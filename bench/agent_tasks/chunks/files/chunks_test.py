import unittest

from chunks import chunks, padded_chunks


class ChunksTest(unittest.TestCase):
    def test_even_split(self):
        self.assertEqual(chunks([1, 2, 3, 4], 2), [[1, 2], [3, 4]])

    def test_last_chunk_shorter(self):
        self.assertEqual(chunks([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]])

    def test_size_larger_than_list(self):
        self.assertEqual(chunks(["a", "b"], 5), [["a", "b"]])

    def test_size_one(self):
        self.assertEqual(chunks([1, 2, 3], 1), [[1], [2], [3]])

    def test_empty(self):
        self.assertEqual(chunks([], 3), [])

    def test_bad_size(self):
        with self.assertRaises(ValueError):
            chunks([1, 2], 0)


class PaddedChunksTest(unittest.TestCase):
    def test_last_chunk_is_filled(self):
        self.assertEqual(padded_chunks([1, 2, 3], 2, 0), [[1, 2], [3, 0]])

    def test_no_fill_needed(self):
        self.assertEqual(padded_chunks([1, 2, 3, 4], 2, None), [[1, 2], [3, 4]])

    def test_fill_several(self):
        self.assertEqual(padded_chunks(["x"], 3, "-"), [["x", "-", "-"]])

    def test_empty(self):
        self.assertEqual(padded_chunks([], 2, 0), [])

    def test_bad_size(self):
        with self.assertRaises(ValueError):
            padded_chunks([1], -1, 0)


if __name__ == "__main__":
    unittest.main()
