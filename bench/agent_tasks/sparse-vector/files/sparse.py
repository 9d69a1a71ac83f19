class SparseVector:
    def __init__(self, size, values=None):
        pass

    def __getitem__(self, index):
        pass

    def __setitem__(self, index, value):
        pass

    def __len__(self):
        pass

    def nonzero(self):
        pass

    def dot(self, other):
        pass

    def __add__(self, other):
        pass

    def to_list(self):
        pass
