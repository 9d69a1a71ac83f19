class Inventory:
    def __init__(self):
        self._stock = {}

    @staticmethod
    def _check(qty):
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            raise ValueError("quantity must be a positive integer")

    def add(self, item, qty=1):
        self._check(qty)
        self._stock[item] = self._stock.get(item, 0) + qty

    def remove(self, item, qty=1):
        self._check(qty)
        have = self._stock.get(item, 0)
        if qty > have:
            raise ValueError(f"only {have} of {item}")
        if have == qty:
            del self._stock[item]
        else:
            self._stock[item] = have - qty

    def count(self, item):
        return self._stock.get(item, 0)

    def items(self):
        return sorted(self._stock.items())

    def total(self):
        return sum(self._stock.values())
