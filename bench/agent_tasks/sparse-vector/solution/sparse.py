class SparseVector:
    def __init__(self, size, values=None):
        self.size = size
        self._data = {}
        for index, value in (values or {}).items():
            self[index] = value

    def _check(self, index):
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} outside 0..{self.size - 1}")

    def __getitem__(self, index):
        self._check(index)
        return self._data.get(index, 0)

    def __setitem__(self, index, value):
        self._check(index)
        if value == 0:
            self._data.pop(index, None)
        else:
            self._data[index] = value

    def __len__(self):
        return self.size

    def nonzero(self):
        return len(self._data)

    def _same_size(self, other):
        if self.size != other.size:
            raise ValueError("sizes differ")

    def dot(self, other):
        self._same_size(other)
        return sum(value * other._data.get(index, 0) for index, value in self._data.items())

    def __add__(self, other):
        self._same_size(other)
        result = SparseVector(self.size, self._data)
        for index, value in other._data.items():
            result[index] = result[index] + value
        return result

    def to_list(self):
        return [self._data.get(i, 0) for i in range(self.size)]
