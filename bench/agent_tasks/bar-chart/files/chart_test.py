import unittest

from chart import bar_chart


class BarChartTest(unittest.TestCase):
    def test_example(self):
        self.assertEqual(
            bar_chart({"cats": 4, "dogs": 2, "fish": 1}, width=8),
            "cats | ######## 4\ndogs | #### 2\nfish | ## 1",
        )

    def test_empty(self):
        self.assertEqual(bar_chart({}), "")

    def test_single_uses_full_width(self):
        self.assertEqual(bar_chart({"a": 3}, width=5), "a | ##### 3")

    def test_default_width(self):
        self.assertEqual(bar_chart({"x": 1}), "x | " + "#" * 20 + " 1")

    def test_labels_are_padded(self):
        self.assertEqual(bar_chart({"a": 2, "long": 2}, width=2), "a    | ## 2\nlong | ## 2")

    def test_ties_sorted_by_label(self):
        self.assertEqual(bar_chart({"b": 1, "a": 1, "c": 2}, width=2), "c | ## 2\na | # 1\nb | # 1")

    def test_half_rounds_up(self):
        self.assertEqual(bar_chart({"a": 4, "b": 1}, width=2), "a | ## 4\nb | # 1")

    def test_rounding_down(self):
        self.assertEqual(bar_chart({"a": 10, "b": 3}, width=4), "a | #### 10\nb | # 3")

    def test_all_zero(self):
        self.assertEqual(bar_chart({"a": 0, "b": 0}, width=5), "a |  0\nb |  0")


if __name__ == "__main__":
    unittest.main()
