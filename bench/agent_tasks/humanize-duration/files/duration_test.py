import unittest

from duration import humanize, parse


class HumanizeTest(unittest.TestCase):
    def test_zero(self):
        self.assertEqual(humanize(0), "0s")

    def test_seconds_only(self):
        self.assertEqual(humanize(45), "45s")

    def test_mixed(self):
        self.assertEqual(humanize(3725), "1h 2m 5s")

    def test_zero_parts_left_out(self):
        self.assertEqual(humanize(3605), "1h 5s")

    def test_whole_day(self):
        self.assertEqual(humanize(86400), "1d")

    def test_all_parts(self):
        self.assertEqual(humanize(90061), "1d 1h 1m 1s")

    def test_negative(self):
        with self.assertRaises(ValueError):
            humanize(-1)


class ParseTest(unittest.TestCase):
    def test_simple(self):
        self.assertEqual(parse("1h 30m"), 5400)

    def test_any_order_and_spacing(self):
        self.assertEqual(parse("5s   2m"), 125)

    def test_days(self):
        self.assertEqual(parse("2d"), 172800)

    def test_round_trip(self):
        self.assertEqual(parse(humanize(93784)), 93784)

    def test_unknown_unit(self):
        with self.assertRaises(ValueError):
            parse("3w")

    def test_empty(self):
        with self.assertRaises(ValueError):
            parse("")

    def test_missing_number(self):
        with self.assertRaises(ValueError):
            parse("h")


if __name__ == "__main__":
    unittest.main()
