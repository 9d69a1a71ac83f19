import unittest

from mask import mask_email, mask_phone


class MaskEmailTest(unittest.TestCase):
    def test_typical(self):
        self.assertEqual(mask_email("john.doe@example.com"), "j******e@example.com")

    def test_three_characters(self):
        self.assertEqual(mask_email("ann@mail.net"), "a*n@mail.net")

    def test_two_characters(self):
        self.assertEqual(mask_email("ab@x.org"), "**@x.org")

    def test_one_character(self):
        self.assertEqual(mask_email("z@x.org"), "*@x.org")

    def test_no_at(self):
        with self.assertRaises(ValueError):
            mask_email("nobody.example.com")

    def test_two_ats(self):
        with self.assertRaises(ValueError):
            mask_email("a@b@c")

    def test_empty_local_part(self):
        with self.assertRaises(ValueError):
            mask_email("@example.com")


class MaskPhoneTest(unittest.TestCase):
    def test_formatted(self):
        self.assertEqual(mask_phone("+1 (555) 123-4567"), "+* (***) ***-4567")

    def test_digits_only(self):
        self.assertEqual(mask_phone("0612345678"), "******5678")

    def test_exactly_four_digits(self):
        self.assertEqual(mask_phone("12-34"), "12-34")

    def test_too_short(self):
        with self.assertRaises(ValueError):
            mask_phone("123")


if __name__ == "__main__":
    unittest.main()
