class Inventory:
    def __init__(self):
        pass

    def add(self, item, qty=1):
        pass

    def remove(self, item, qty=1):
        pass

    def count(self, item):
        pass

    def items(self):
        pass

    def total(self):
        pass
