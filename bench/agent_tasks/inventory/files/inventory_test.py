import unittest

from inventory import Inventory


class InventoryTest(unittest.TestCase):
    def test_new_inventory_is_empty(self):
        inv = Inventory()
        self.assertEqual(inv.items(), [])
        self.assertEqual(inv.total(), 0)

    def test_add_one(self):
        inv = Inventory()
        inv.add("apple")
        self.assertEqual(inv.count("apple"), 1)

    def test_add_accumulates(self):
        inv = Inventory()
        inv.add("apple", 3)
        inv.add("apple", 2)
        self.assertEqual(inv.count("apple"), 5)

    def test_unknown_item_counts_zero(self):
        self.assertEqual(Inventory().count("pear"), 0)

    def test_remove(self):
        inv = Inventory()
        inv.add("nail", 10)
        inv.remove("nail", 4)
        self.assertEqual(inv.count("nail"), 6)

    def test_remove_too_many_changes_nothing(self):
        inv = Inventory()
        inv.add("nail", 2)
        with self.assertRaises(ValueError):
            inv.remove("nail", 3)
        self.assertEqual(inv.count("nail"), 2)

    def test_remove_unknown_item(self):
        with self.assertRaises(ValueError):
            Inventory().remove("ghost")

    def test_item_at_zero_is_forgotten(self):
        inv = Inventory()
        inv.add("cup", 2)
        inv.remove("cup", 2)
        self.assertEqual(inv.items(), [])

    def test_items_sorted_by_name(self):
        inv = Inventory()
        inv.add("pear", 2)
        inv.add("apple", 1)
        inv.add("fig", 7)
        self.assertEqual(inv.items(), [("apple", 1), ("fig", 7), ("pear", 2)])

    def test_total(self):
        inv = Inventory()
        inv.add("a", 2)
        inv.add("b", 3)
        self.assertEqual(inv.total(), 5)

    def test_bad_quantities(self):
        inv = Inventory()
        for qty in (0, -1, 1.5):
            with self.assertRaises(ValueError):
                inv.add("x", qty)
        inv.add("x", 1)
        with self.assertRaises(ValueError):
            inv.remove("x", 0)


if __name__ == "__main__":
    unittest.main()
