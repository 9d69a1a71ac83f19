import unittest

from ledger import totals


class TotalsTest(unittest.TestCase):
    def test_empty(self):
        self.assertEqual(totals(""), {})

    def test_one_line(self):
        self.assertEqual(totals("alice,12.50"), {"alice": 12.5})

    def test_sums_per_name(self):
        self.assertEqual(totals("alice,1\nbob,2\nalice,3"), {"alice": 4.0, "bob": 2.0})

    def test_rounding(self):
        self.assertEqual(totals("x,0.1\nx,0.2"), {"x": 0.3})

    def test_negative_amounts(self):
        self.assertEqual(totals("carol,10\ncarol,-2.25"), {"carol": 7.75})

    def test_blank_and_comment_lines(self):
        text = "# header\n\nalice,1\n   \n# note\nalice,1"
        self.assertEqual(totals(text), {"alice": 2.0})

    def test_spaces_are_ignored(self):
        self.assertEqual(totals("  dave ,  5 "), {"dave": 5.0})

    def test_names_are_case_sensitive(self):
        self.assertEqual(totals("Eve,1\neve,2"), {"Eve": 1.0, "eve": 2.0})

    def test_bad_amount_names_the_line(self):
        with self.assertRaisesRegex(ValueError, "line 3"):
            totals("a,1\nb,2\nc,lots")

    def test_wrong_field_count_names_the_line(self):
        with self.assertRaisesRegex(ValueError, "line 2"):
            totals("a,1\na,2,3")


if __name__ == "__main__":
    unittest.main()
