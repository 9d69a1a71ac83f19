import unittest

from ordinal import ordinal, parse_ordinal


class OrdinalTest(unittest.TestCase):
    def test_first_ones(self):
        self.assertEqual([ordinal(n) for n in range(1, 5)], ["1st", "2nd", "3rd", "4th"])

    def test_zero(self):
        self.assertEqual(ordinal(0), "0th")

    def test_teens(self):
        self.assertEqual([ordinal(n) for n in (11, 12, 13)], ["11th", "12th", "13th"])

    def test_twenties(self):
        self.assertEqual([ordinal(n) for n in (21, 22, 23, 24)], ["21st", "22nd", "23rd", "24th"])

    def test_hundreds(self):
        self.assertEqual([ordinal(n) for n in (101, 111, 112, 213, 103)],
                         ["101st", "111th", "112th", "213th", "103rd"])

    def test_negative(self):
        with self.assertRaises(ValueError):
            ordinal(-1)


class ParseOrdinalTest(unittest.TestCase):
    def test_parse(self):
        self.assertEqual(parse_ordinal("23rd"), 23)

    def test_case_and_whitespace(self):
        self.assertEqual(parse_ordinal("  2ND "), 2)

    def test_teen(self):
        self.assertEqual(parse_ordinal("12th"), 12)

    def test_wrong_suffix(self):
        for bad in ("23th", "11st", "2rd"):
            with self.assertRaises(ValueError, msg=bad):
                parse_ordinal(bad)

    def test_not_an_ordinal(self):
        for bad in ("5", "first", "th", ""):
            with self.assertRaises(ValueError, msg=bad):
                parse_ordinal(bad)


if __name__ == "__main__":
    unittest.main()
