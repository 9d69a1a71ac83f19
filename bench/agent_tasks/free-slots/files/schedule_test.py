import unittest

from schedule import free_slots


class FreeSlotsTest(unittest.TestCase):
    def test_no_meetings(self):
        self.assertEqual(free_slots([]), [("09:00", "17:00")])

    def test_one_meeting(self):
        self.assertEqual(free_slots([("10:00", "11:00")]), [("09:00", "10:00"), ("11:00", "17:00")])

    def test_unsorted_and_overlapping(self):
        busy = [("13:00", "14:30"), ("10:00", "11:00"), ("10:30", "12:00")]
        self.assertEqual(free_slots(busy), [("09:00", "10:00"), ("12:00", "13:00"), ("14:30", "17:00")])

    def test_touching_meetings_leave_no_gap(self):
        busy = [("09:00", "10:00"), ("10:00", "12:00")]
        self.assertEqual(free_slots(busy), [("12:00", "17:00")])

    def test_meetings_outside_day_are_clipped(self):
        busy = [("08:00", "09:30"), ("16:00", "18:00"), ("19:00", "20:00")]
        self.assertEqual(free_slots(busy), [("09:30", "16:00")])

    def test_fully_booked(self):
        self.assertEqual(free_slots([("08:00", "18:00")]), [])

    def test_custom_day(self):
        self.assertEqual(free_slots([("07:15", "07:45")], start="07:00", end="08:00"),
                         [("07:00", "07:15"), ("07:45", "08:00")])

    def test_bad_time(self):
        for bad in ("9:00", "24:00", "12:60", "noon"):
            with self.assertRaises(ValueError, msg=bad):
                free_slots([(bad, "13:00")])

    def test_meeting_ending_before_start(self):
        with self.assertRaises(ValueError):
            free_slots([("11:00", "10:00")])


if __name__ == "__main__":
    unittest.main()
