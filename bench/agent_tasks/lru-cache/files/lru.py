class LRUCache:
    def __init__(self, capacity):
        pass

    def get(self, key, default=None):
        pass

    def put(self, key, value):
        pass

    def keys(self):
        pass

    def __len__(self):
        pass
